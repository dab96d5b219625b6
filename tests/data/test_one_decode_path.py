"""Training, eval, `infer` and the web demo cut views through one path: the decode as it comes
(8-bit images stay uint8, converted to float only for the rows the sampler reads), so that the
views are identical everywhere and sampling costs no full-ERP float conversion."""

import types

import pytest
import torch
from fastapi.testclient import TestClient

from panollava.config import PanoConfig
from panollava.data.datasets import build_dataset
from panollava.data.images import decode_erp, load_erp, load_views
from panollava.inference.predictor import Predictor
from panollava.serve import app as serve_app
from panollava.views import viewset
from panollava.views.schema import ViewsConfig
from panollava.views.viewset import build_viewset

VIEWS = ViewsConfig(tile_size=32)


@pytest.fixture
def sampled_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of every ERP batch handed to the view sampler."""
    seen: list[torch.dtype] = []
    real = viewset.sample_views

    def spy(erp, *args, **kwargs):
        seen.append(erp.dtype)
        return real(erp, *args, **kwargs)

    monkeypatch.setattr(viewset, "sample_views", spy)
    return seen


def test_every_path_samples_the_uint8_decode(synth_dir, sampled_dtypes):
    image = synth_dir / "test" / sorted(p.name for p in (synth_dir / "test").glob("*.jpg"))[0]
    cfg = PanoConfig.model_validate(
        {
            "data": {"train": [synth_dir / "train.tsv"], "test": [synth_dir / "test.tsv"]},
            "views": {"tile_size": 32},
        }
    )
    dataset = build_dataset(cfg, "test", mode="eval")
    row = next(r for r in dataset.groups if r.rows[0].image == image).rows[0]
    from_dataset, _ = dataset.load_views(row, None)
    owner = types.SimpleNamespace(views_cfg=VIEWS, image_cfg=cfg.image)
    _, from_infer = Predictor.load(owner, image)
    client = TestClient(
        serve_app.create_app(lambda views, query: "ok", VIEWS), base_url="http://127.0.0.1:8000"
    )
    res = client.post("/api/panorama", files={"file": ("p.jpg", image.read_bytes(), "image/jpeg")})
    assert res.status_code == 200, res.text
    assert sampled_dtypes and set(sampled_dtypes) == {torch.uint8}, sampled_dtypes
    assert torch.equal(from_dataset, from_infer.pixels)
    _, direct = load_views(image, VIEWS, cfg=cfg.image)
    assert torch.equal(direct.pixels, from_infer.pixels)


def test_uint8_views_match_the_float_views_within_rounding(sample_images):
    """The uint8 path rounds its pyramid levels, its samples and the blend of two levels to
    whole levels (<= 0.5 each, and levels 1+ only where the views minify): <= 1.5 levels,
    0.30 on average here; the geometry is the same (point sampling: tests/geometry)."""
    path = sample_images[0]
    views = ViewsConfig(tile_size=448)
    need = 2048
    u8 = build_viewset(decode_erp(path, min_width=need), views).pixels
    f32 = build_viewset(load_erp(path, min_width=need), views).pixels
    assert decode_erp(path, min_width=need).dtype == torch.uint8
    assert u8.dtype == torch.uint8 and f32.dtype == torch.float32  # views keep the ERP's kind
    diff = (u8.float() - f32 * 255).abs()
    assert diff.max() <= 1.5 + 1e-3 and diff.mean() < 0.35
