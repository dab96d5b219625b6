import pytest
import torch

from panollava.views import build_viewset, make_layout, required_erp_width
from panollava.views.schema import ViewsConfig


def test_anyres_e2p_defaults_match_the_spec():
    layout = make_layout(ViewsConfig())
    assert len(layout) == 9 and layout.views[0].kind == "global"
    assert [v.yaw_deg for v in layout.tiles] == [0, 45, 90, 135, -180, -135, -90, -45]
    assert all(v.hfov_deg == 90 and v.size == (256, 256) for v in layout.tiles)
    assert layout.ring_overlap == pytest.approx(0.5) and layout.ring_stride_deg == 45
    assert layout.pairs[-1] == (8, 1)  # the wrap pair closes the ring


@pytest.mark.parametrize(
    ("fov", "overlap", "views"),
    [(90, 0.0, 5), (60, 0.0, 7), (30, 0.0, 13), (45, 0.25, 12), (90, 0.5, 9)],
)
def test_fov_sweep_view_counts(fov, overlap, views):
    layout = make_layout(ViewsConfig(fov_deg=fov, overlap=overlap))
    assert len(layout) == views
    n = len(layout.tiles)
    assert layout.ring_overlap == pytest.approx(max(0.0, 1 - (360 / n) / fov))


def test_actual_overlap_is_derived_from_the_closed_ring():
    layout = make_layout(ViewsConfig(fov_deg=100, overlap=0.3))  # 360/70 -> 6 tiles, stride 60
    assert len(layout.tiles) == 6
    assert layout.ring_overlap == pytest.approx(1 - 60 / 100)


@pytest.mark.parametrize(
    ("strategy", "count", "has_global"),
    [
        ("resize", 1, True),
        ("native", 1, True),
        ("sliding_window", 8, False),
        ("e2p", 8, False),
        ("pinhole", 8, False),
        ("cubemap", 5, True),
        ("anyres", 9, True),
        ("anyres_e2p", 9, True),
    ],
)
def test_every_strategy_builds(strategy, count, has_global):
    cfg = ViewsConfig(strategy=strategy, tile_size=32)
    erp = torch.rand(3, 64, 128)
    vs = build_viewset(erp, cfg)
    assert len(vs) == count == len(vs.views)
    assert (vs.views[0].kind == "global") == has_global
    if strategy == "native":
        assert torch.equal(vs.pixels[0], erp)
    else:
        assert vs.pixels.shape == (count, 3, 32, 32)
        assert vs.pixels.min() >= 0.0 and vs.pixels.max() <= 1.0
    assert vs.to_json()["views"][0]["index"] == 0


def test_cubemap_six_faces_and_pinhole_refuses_global():
    layout = make_layout(ViewsConfig(strategy="cubemap", cube_faces=6))
    assert [v.name for v in layout.views] == ["F", "R", "B", "L", "U", "D"]
    with pytest.raises(ValueError, match="pinhole"):
        make_layout(ViewsConfig(strategy="pinhole", global_view=True))


def test_global_view_modes():
    erp = torch.full((3, 64, 128), 0.8)
    stretch = build_viewset(erp, ViewsConfig(strategy="resize", tile_size=32)).pixels[0]
    letterbox = build_viewset(
        erp, ViewsConfig(strategy="resize", tile_size=32, global_mode="letterbox")
    ).pixels[0]
    assert torch.allclose(stretch, torch.full_like(stretch, 0.8))  # every token sees content
    assert letterbox[:, :8].abs().max() == 0 and letterbox[:, -8:].abs().max() == 0  # black bands
    assert torch.allclose(letterbox[:, 8:24], torch.full_like(letterbox[:, 8:24], 0.8))


def test_sliding_window_is_a_pixel_crop_that_wraps():
    h, w = 32, 64
    erp = torch.arange(w, dtype=torch.float32).expand(3, h, w) / w
    cfg = ViewsConfig(strategy="sliding_window", fov_deg=90, overlap=0.5, tile_size=16)
    vs = build_viewset(erp, cfg)
    # Tile at yaw -180 covers the last 8 and the first 8 columns (16 px = 90° of a 64-px ERP).
    seam = vs.pixels[next(v.index for v in vs.views if v.yaw_deg == -180)]
    expected = torch.cat((torch.arange(56, 64), torch.arange(0, 8))).float() / w
    assert torch.allclose(seam[0, 8], expected, atol=1e-6)


def test_required_erp_width_for_default_views():
    assert required_erp_width(ViewsConfig()) == 805  # 256-px 90° tiles
    assert required_erp_width(ViewsConfig(strategy="native")) is None
