"""Multi-view PE periodicity and view stitching counts."""

import torch

from panollava.geometry import ViewGeometry
from panollava.positional import MultiViewPE, direction_codes, stitch_keep_index, token_directions
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
    codes = direction_codes(lon, torch.zeros(2), 32, 10000.0)
    assert torch.allclose(codes[0], codes[1], atol=1e-5)


def test_geometric_matches_of_adjacent_tiles_get_close_codes():
    layout = make_layout(ViewsConfig(tile_size=64))
    lon, lat = token_directions(layout, (4, 4))
    codes = direction_codes(lon, lat, 64, 10000.0)
    pp = patch_correspondences(layout, (4, 4), mutual=True)[-1]  # the wrap pair
    near = (codes[pp.i, pp.idx_i] - codes[pp.j, pp.idx_j]).norm(dim=-1)
    far = (codes[pp.i, pp.idx_i] - codes[pp.j, pp.idx_j.flip(0)]).norm(dim=-1)
    assert near.mean() < far.mean()


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


def test_positions_figure_cli(tmp_path):
    from typer.testing import CliRunner

    from panollava.cli import app

    out = tmp_path / "pos.png"
    for kind in ("mrope", "1d"):
        res = CliRunner().invoke(
            app, ["positions", "--out", str(out), "--grid", "4", "--kind", kind]
        )
        assert res.exit_code == 0, res.output
        assert out.stat().st_size > 10_000
