"""Broken or extreme images: found by `data check`, refused or skipped by the loaders."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from panollava.config import ViewsConfig
from panollava.data.datasets import PanoramaDataset
from panollava.data.quic360 import read_split
from panollava.data.validate import check_image, ensure_valid

VIEWS = ViewsConfig(strategy="resize", tile_size=32)


def _jpeg(path: Path, *, keep: float = 1.0, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (128, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_jpeg_fails_the_cheap_header_check(tmp_path):
    """`check_images: header` used to pass a download cut at 70%: training then died mid-run."""
    path = _jpeg(tmp_path / "cut.jpg", keep=0.7)
    assert check_image(path, "cut.jpg", mode="header") == (
        "unreadable_image",
        f"truncated JPEG {path} (no end-of-image marker)",
    )
    assert check_image(_jpeg(tmp_path / "ok.jpg"), "ok.jpg", mode="header") is None


def test_skip_invalid_skips_a_truncated_jpeg_before_training(tmp_path):
    _jpeg(tmp_path / "ok.jpg")
    _jpeg(tmp_path / "cut.jpg", keep=0.7)
    table = tmp_path / "t.tsv"
    table.write_text("url\tquery\tannotation\nok.jpg\tq\ta\ncut.jpg\tq\tb\n", encoding="utf-8")
    kept = ensure_valid(read_split([table]), images="header", skip_invalid=True, run_dir=tmp_path)
    assert [r.url for r in kept] == ["ok.jpg"]
    assert "cut.jpg" in (tmp_path / "skipped_rows.tsv").read_text()


def test_image_failing_only_at_load_time_is_skipped_and_counted_with_skip_invalid(tmp_path, caplog):
    """An image that breaks after the check (or one the check cannot see) is skipped with a
    logged count instead of killing training mid-run."""
    _jpeg(tmp_path / "a.jpg", seed=1)
    _jpeg(tmp_path / "b.jpg", seed=2)
    table = tmp_path / "t.tsv"
    table.write_text("url\tquery\tannotation\na.jpg\tq\ta\nb.jpg\tq\tb\n", encoding="utf-8")
    rows = read_split([table])
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg any more")
    ds = PanoramaDataset(rows, mode="train", views=VIEWS, skip_invalid=True)
    with caplog.at_level(logging.WARNING):
        sample = ds[0]
    assert sample.url == "b.jpg" and sample.answer == "b"
    assert ds.skipped == {0}
    assert "t.tsv:1 at load time (1 row(s) skipped so far)" in caplog.text
