"""Multi-view PE periodicity and separation, and view stitching counts."""

import itertools
import math
import re
from pathlib import Path

import pytest
import torch

from panollava.config import load_config
from panollava.geometry import ViewGeometry
from panollava.positional import (
    MultiViewPE,
    code_separation,
    direction_codes,
    stitch_keep_index,
    token_directions,
)
from panollava.views import make_layout, patch_correspondences
from panollava.views.layout import ViewLayout, ViewMeta
from panollava.views.schema import ViewsConfig


def test_same_direction_same_code_across_tiles_and_the_seam():
    # Two tiles whose patch centres coincide exactly: 16 columns, 90° tiles at yaw 179.5 and
    # -180.5 + 360k... i.e. the same camera expressed across the seam, plus a shifted copy.
    geoms = [
        ViewGeometry("gnomonic", 179.0, 10.0, 90.0, 90.0),
        ViewGeometry("gnomonic", -181.0, 10.0, 90.0, 90.0),
    ]
    views = tuple(ViewMeta(k, "tile", g, 64, 64, 0) for k, g in enumerate(geoms))
    layout = ViewLayout("test", views)
    pe = MultiViewPE(32, layout, (4, 4))
    assert torch.allclose(pe.code[0], pe.code[1], atol=1e-5)
    lon = torch.tensor([torch.pi - 1e-7, -torch.pi + 1e-7])
    codes = direction_codes(lon, torch.zeros(2), 32, shortest_period_deg=20.0)
    assert torch.allclose(codes[0], codes[1], atol=1e-5)


def test_geometric_matches_of_adjacent_tiles_get_close_codes():
    layout = make_layout(ViewsConfig(tile_size=64))
    lon, lat = token_directions(layout, (4, 4))
    codes = direction_codes(lon, lat, 64, shortest_period_deg=20.0)
    pp = patch_correspondences(layout, (4, 4), mutual=True)[-1]  # the wrap pair
    near = (codes[pp.i, pp.idx_i] - codes[pp.j, pp.idx_j]).norm(dim=-1)
    far = (codes[pp.i, pp.idx_i] - codes[pp.j, pp.idx_j.flip(0)]).norm(dim=-1)
    assert near.mean() < far.mean()


def test_pe_similarity_orders_same_direction_neighbour_opposite():
    """Issue #15 item 10: the old PE gave 0.61 / 0.50 (1.00 vertically) / 0.49."""
    layout = make_layout(ViewsConfig())
    for dim in (1024, 1152):  # BiMamba hidden (default config), SigLIP2 width
        sep = code_separation(MultiViewPE(dim, layout, (16, 16)).code, layout, (16, 16))
        neighbour = (sep["neighbour_h"], sep["neighbour_v"])
        assert sep["corresponding"] > max(neighbour) + 0.04, sep
        assert min(neighbour) > sep["opposite"] + 0.5, sep
        assert abs(sep["opposite"]) < 0.1, sep
        assert abs(sep["neighbour_h"] - sep["neighbour_v"]) < 0.05, sep  # latitude counts too


def test_similarity_falls_with_angular_distance():
    g = torch.Generator().manual_seed(0)
    n = 20_000
    a = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    side = torch.nn.functional.normalize(
        torch.linalg.cross(a, torch.randn(n, 3, generator=g, dtype=torch.float64)), dim=-1
    )
    angle = torch.rand(n, generator=g, dtype=torch.float64) ** 2 * math.pi
    b = a * torch.cos(angle)[:, None] + side * torch.sin(angle)[:, None]

    def code(v):
        lon, lat = torch.atan2(v[:, 0], v[:, 2]), torch.asin(v[:, 1].clamp(-1, 1))
        return direction_codes(lon, lat, 1024, shortest_period_deg=16.875)

    sim = torch.nn.functional.cosine_similarity(code(a), code(b), dim=-1)
    deg = torch.rad2deg(angle)
    edges = [0, 3, 6, 10, 20, 40, 70, 110, 180]
    means = [float(sim[(deg >= lo) & (deg < hi)].mean()) for lo, hi in itertools.pairwise(edges)]
    assert all(x > y for x, y in itertools.pairwise(means)), means
    assert means[0] > 0.95 and means[-1] < 0.05, means


def test_no_band_aliases_at_patch_scale():
    layout = make_layout(ViewsConfig())
    with pytest.raises(ValueError, match="Nyquist"):
        MultiViewPE(64, layout, (16, 16), shortest_period_patches=1.5)
    pe = MultiViewPE(64, layout, (16, 16))
    glob, tile = pe.code[layout.global_index], pe.code[layout.tiles[0].index]
    # tiles (5.6° patches) keep every band; the global view (22.5° x 11.25°) drops the finest
    assert (tile.abs().sum(0) > 0).all()
    assert 0 < int((glob.abs().sum(0) == 0).sum()) < 64


def test_pe_module_adds_a_code_and_keeps_shape():
    layout = make_layout(ViewsConfig(tile_size=64))
    pe = MultiViewPE(16, layout, (4, 4), dropout=0.0)
    x = torch.zeros(2, 9, 16, 16)
    y = pe(x)
    assert y.shape == x.shape and torch.equal(y[0], pe.code)


def test_stride_views_count_on_the_default_layout():
    """1,208 tile tokens (+256 global), not 1,152: see panollava.positional.multiview_pe.

    Each tile but the first drops the patches whose centres its left neighbour sees; near the top
    and bottom rows of the left 8 columns the neighbour's gnomonic frustum is too narrow to see
    them, so 8 x 16 = 128 is an upper bound on what can be dropped per tile (exactly 120 here).
    """
    layout = make_layout(ViewsConfig())
    keep = stitch_keep_index(layout, (16, 16), "stride_views")
    assert len(keep) == 256 + 256 + 7 * (256 - 120)
    assert len(keep) - 256 == 1208
    assert len(stitch_keep_index(layout, (16, 16), "concat")) == 9 * 256
    per_view = torch.bincount(keep // 256, minlength=9)
    assert per_view[0] == 256 and per_view[1] == 256  # global view and the ring's first tile


def test_default_config_documents_the_stride_views_count():
    """The figures in configs/panollava/default.yaml are the count stride_views keeps."""
    path = Path(__file__).parents[2] / "configs" / "panollava" / "default.yaml"
    cfg = load_config(path)
    text = path.read_text(encoding="utf-8")
    num = r"(\d[\d,]*)"
    doc = re.search(
        rf"stride_views: {num} =\s*#\s*{num} global \+ {num} first tile \+ {num} x {num}", text
    )
    tiles_doc = re.search(rf"Tile tokens: {num}\.", text)
    assert doc and tiles_doc, "default.yaml must state the stride_views token count"
    total, glob, first, n_rest, rest = (int(g.replace(",", "")) for g in doc.groups())
    patch = int(re.search(r"patch(\d+)", cfg.model.vision_name)[1])  # SigLIP2 patch16-256
    grid = (cfg.views.tile_size // patch,) * 2
    layout = make_layout(cfg.views)
    keep = stitch_keep_index(layout, grid, "stride_views")
    per_view = torch.bincount(keep // (grid[0] * grid[1]), minlength=len(layout)).tolist()
    assert len(keep) == total
    assert per_view[layout.global_index] == glob and per_view[layout.tiles[0].index] == first
    assert [per_view[v.index] for v in layout.tiles[1:]] == [rest] * n_rest
    assert total - glob == int(tiles_doc[1].replace(",", ""))
