"""Datasets: train/eval grouping, lazy images, sphere-respecting and resumable augmentation."""

import random

import numpy as np
import pytest
import torch
from data_helpers import write_table

from panollava.config import PanoConfig
from panollava.data import datasets as datasets_module
from panollava.data.augment import augment_erp, rotate_yaw, sample_generator
from panollava.data.datasets import PanoramaDataset, build_dataset
from panollava.data.quic360 import DataError, read_split
from panollava.data.schema import AugmentConfig
from panollava.views import build_viewset
from panollava.views.schema import ViewsConfig

VIEWS = ViewsConfig(tile_size=32)
AUG = AugmentConfig(enabled=True, yaw_max_deg=180, brightness=0.3, contrast=0.3, saturation=0.3)


def _cfg(synth_dir, **data) -> PanoConfig:
    return PanoConfig.model_validate(
        {
            "data": {
                "train": [synth_dir / "train.tsv"],
                "test": [synth_dir / "test.tsv"],
                **data,
            },
            "views": {"tile_size": 32},
        }
    )


def test_train_mode_has_one_item_per_caption(synth_dir):
    ds = build_dataset(_cfg(synth_dir), "train")
    rows = read_split([synth_dir / "train.tsv"])
    assert len(ds) == len(rows)
    s = ds[3]
    assert s.views.shape == (9, 3, 32, 32) and s.views.dtype == torch.uint8  # 8-bit JPEGs
    assert (s.query, s.answer) == (rows[3].query, rows[3].reference)
    assert s.references == (rows[3].reference,) and s.image == rows[3].image


def test_eval_mode_groups_pairs_with_all_references(synth_dir):
    ds = build_dataset(_cfg(synth_dir), "test", mode="eval")
    rows = read_split([synth_dir / "test.tsv"])
    assert len(ds) == len({(r.url, r.query) for r in rows})
    s = ds[0]
    assert s.answer is None and len(s.references) >= 3
    assert s.references == tuple(r.reference for r in rows if (r.url, r.query) == (s.url, s.query))


def test_tables_are_lazy_about_images(synth_dir, monkeypatch):
    opened = []
    monkeypatch.setattr(datasets_module, "decode_erp", lambda *a, **k: opened.append(a) or 1 / 0)
    ds = PanoramaDataset(read_split([synth_dir / "train.tsv"]), mode="train", views=VIEWS)
    assert len(ds) > 0 and not opened
    with pytest.raises(ZeroDivisionError):
        ds[0]
    assert len(opened) == 1


def test_augmentation_is_keyed_by_seed_epoch_index_not_global_rng(synth_dir):
    rows = read_split([synth_dir / "train.tsv"])
    ds = PanoramaDataset(rows, mode="train", views=VIEWS, augment=AUG, seed=7)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    a = ds[(2, 5)]
    assert torch.equal(states[0], torch.get_rng_state()) and states[1] == random.getstate()
    assert np.array_equal(states[2], np.random.get_state()[1])
    ds.set_epoch(2)
    b = ds[5]
    assert torch.equal(a.views, b.views) and a.augment == b.augment
    fresh = PanoramaDataset(rows, mode="train", views=VIEWS, augment=AUG, seed=7)
    assert torch.equal(fresh[(2, 5)].views, a.views)  # a resumed run sees the same sample
    assert ds[(3, 5)].augment != a.augment and ds[(2, 6)].augment != a.augment
    other_seed = PanoramaDataset(rows, mode="train", views=VIEWS, augment=AUG, seed=8)
    assert other_seed[(2, 5)].augment != a.augment


def test_augmentation_is_off_by_default_and_train_only(synth_dir):
    cfg = _cfg(synth_dir)
    assert not cfg.data.augment.enabled
    ds = build_dataset(cfg, "train")
    assert ds[0].augment is None
    rows = read_split([synth_dir / "train.tsv"])
    with pytest.raises(ValueError, match="training only"):
        PanoramaDataset(rows, mode="eval", views=VIEWS, augment=AUG)
    on = _cfg(synth_dir, augment={"enabled": True, "brightness": 0.2})
    assert build_dataset(on, "train")[0].augment is not None
    assert build_dataset(on, "test", mode="eval")[0].augment is None


def test_yaw_roll_is_a_rotation_of_the_sphere():
    """Views of the ERP rolled by 90° at yaw θ equal views of the original at yaw θ + 90°."""
    erp = torch.rand(3, 64, 128, generator=torch.Generator().manual_seed(0))
    rolled = rotate_yaw(erp, 90.0)
    assert torch.equal(rolled[..., :96], erp[..., 32:]) and torch.equal(
        rolled[..., 96:], erp[..., :32]
    )
    cfg = ViewsConfig(tile_size=16, num_tiles=4, global_view=False)
    a = build_viewset(rolled, cfg).pixels  # tiles at yaw 0, 90, 180, 270
    b = build_viewset(erp, cfg).pixels
    assert torch.allclose(a, torch.roll(b, shifts=-1, dims=0), atol=1e-5)
    assert torch.equal(rotate_yaw(erp, 360.0), erp)


def test_photometric_jitter_keeps_range_and_is_seeded():
    erp = torch.rand(3, 16, 32, generator=torch.Generator().manual_seed(1))
    cfg = AugmentConfig(enabled=True, yaw_max_deg=0, brightness=0.5, contrast=0.5, saturation=0.5)
    out1, p1 = augment_erp(erp, cfg, sample_generator(0, 1, 2))
    out2, p2 = augment_erp(erp, cfg, sample_generator(0, 1, 2))
    assert p1 == p2 and torch.equal(out1, out2)
    assert out1.min() >= 0.0 and out1.max() <= 1.0 and not torch.equal(out1, erp)
    assert p1.yaw_deg == 0.0 and 0.5 <= p1.brightness <= 1.5
    same, _ = augment_erp(erp, AugmentConfig(), sample_generator(0, 1, 2))
    assert same is erp


def test_broken_rows_are_refused_or_skipped_and_listed(synth_dir, tmp_path):
    good = read_split([synth_dir / "train.tsv"])[0]
    table = write_table(
        tmp_path / "t.tsv",
        [[str(good.image), "colors", "red."], [str(tmp_path / "gone.jpg"), "colors", "blue."]],
    )
    cfg = PanoConfig.model_validate({"data": {"train": [table]}, "views": {"tile_size": 32}})
    with pytest.raises(DataError, match=r"t\.tsv:2 \[missing_image\]"):
        build_dataset(cfg, "train")
    cfg.data.skip_invalid = True
    ds = build_dataset(cfg, "train", run_dir=tmp_path / "run")
    assert len(ds) == 1
    assert "gone.jpg" in (tmp_path / "run" / "skipped_rows.tsv").read_text()


def test_split_without_files_is_a_clear_error(synth_dir):
    with pytest.raises(DataError, match=r"data\.valid"):
        build_dataset(_cfg(synth_dir), "valid")
    with pytest.raises(DataError, match="unknown split"):
        build_dataset(_cfg(synth_dir), "dev")


def test_view_cache_decodes_each_panorama_once_and_keeps_the_views(synth_dir, monkeypatch):
    real = datasets_module.decode_erp
    decoded = []
    monkeypatch.setattr(
        datasets_module, "decode_erp", lambda p, **k: decoded.append(p) or real(p, **k)
    )
    plain = build_dataset(_cfg(synth_dir), "train")
    cached = build_dataset(_cfg(synth_dir, view_cache_mb=64), "train")
    images = {r.image for r in plain.rows}
    assert len(images) < len(plain)  # several queries per panorama
    decoded.clear()
    for _ in range(2):  # two epochs
        for i in range(len(cached)):
            assert torch.equal(cached[i].views, plain[i].views)
    assert len(decoded) == len(plain) * 2 + len(images)  # the plain dataset: every time


def test_view_cache_respects_its_budget(synth_dir):
    one = 9 * 3 * 32 * 32  # bytes of one panorama's views at tile_size 32 (uint8 levels)
    ds = build_dataset(_cfg(synth_dir, view_cache_mb=2.5 * one / 2**20), "train")
    for i in range(len(ds)):
        ds[i]
    assert len(ds.view_cache) == 2


def test_view_cache_with_augmentation_is_refused():
    with pytest.raises(ValueError, match="augmented views differ"):
        PanoConfig.model_validate({"data": {"view_cache_mb": 100, "augment": {"enabled": True}}})
