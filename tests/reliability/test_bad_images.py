"""Broken or extreme images: found by `data check`, refused or skipped by the loaders."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panollava.data.datasets import PanoramaDataset
from panollava.data.images import ImageLoadError, load_erp, open_image
from panollava.data.quic360 import read_split
from panollava.data.schema import ImageConfig
from panollava.data.validate import check_image, ensure_valid
from panollava.views.schema import ViewsConfig

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


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header announces ``width x height`` (no pixel data: opening reads the header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + end)
    return path


def test_raising_max_pixels_lifts_pillows_own_guard_for_that_call_only(tmp_path):
    """`image.max_pixels=2e9` used to leave a 14000x7000 panorama refused by Pillow (89.5 MP)."""
    big = _png_header(tmp_path / "big.png", 14000, 7000)
    default = Image.MAX_IMAGE_PIXELS
    with open_image(big, ImageConfig(max_pixels=2_000_000_000)) as img:
        assert img.size == (14000, 7000)
    assert default == Image.MAX_IMAGE_PIXELS  # never changed for anyone else


@pytest.mark.parametrize(("size", "why"), [((14000, 7000), "max_pixels"), ((8, 4), "min_size")])
def test_data_check_refuses_what_the_loaders_refuse(tmp_path, size, why):
    """`data check` used to pass images every loader refused (98 MP over the limit, 8x4): both
    now call one function with the same image settings."""
    cfg = ImageConfig(max_pixels=50_000_000)
    if size == (8, 4):
        path = tmp_path / "tiny.png"
        Image.new("RGB", size).save(path)
    else:
        path = _png_header(tmp_path / "big.png", *size)
    with pytest.raises(ImageLoadError, match=why):
        load_erp(path, cfg=cfg)
    kind, detail = check_image(path, path.name, mode="header", image_cfg=cfg)
    assert kind == "unreadable_image" and why in detail


def test_a_98_megapixel_panorama_under_the_limit_is_not_refused_by_pillows_guard(tmp_path):
    big = _png_header(tmp_path / "big.png", 14000, 7000)  # 98 MP < image.max_pixels (300 MP)
    with open_image(big, ImageConfig()) as img:  # what loaders and data check both call
        assert img.size == (14000, 7000)


def test_32_bit_integer_tiff_is_scaled_by_its_range_not_saturated(tmp_path):
    """A 32-bit integer TIFF used to be divided by 65535 and clipped: 64% white."""
    ramp = np.linspace(0, 2**31 - 1, 256, dtype=np.float64).astype(np.int32)
    path = tmp_path / "deep.tif"
    Image.fromarray(np.tile(ramp, (128, 1)), mode="I").save(path)
    erp = load_erp(path)  # (3, 128, 256) in [0, 1]
    assert float((erp >= 0.999).float().mean()) < 0.01
    assert abs(float(erp.mean()) - 0.5) < 0.01
