"""PanoRoPE geometry (issue #15 items 6-8): no tear inside a tile, height from latitude, exact ties.

Positions are read back from :func:`panorope_positions` on a synthetic sequence (text, one image
block per view separated by a marker, text), i.e. exactly what the LLM receives.
"""

import pytest
import torch

from panollava.config import ConfigError, config_from_dict
from panollava.geometry import xyz_to_lonlat
from panollava.positional import check_panorope_layout, panorope_positions, ring_columns
from panollava.positional.panorope import row_stride
from panollava.views import make_layout, patch_correspondences
from panollava.views.correspondence import patch_centers_rays
from panollava.views.schema import ViewsConfig

IMG = 7

LAYOUTS = {
    "default": (ViewsConfig(), (16, 16)),
    "qwen-9x9": (ViewsConfig(), (9, 9)),  # Qwen at 256-px tiles: 18 patches of 14, merged 2x2
    "pitch30": (ViewsConfig(pitch_deg=[30.0]), (16, 16)),
    "pitch-30+30": (ViewsConfig(pitch_deg=[-30.0, 30.0]), (16, 16)),
    "pitch44": (ViewsConfig(pitch_deg=[44.0]), (16, 16)),
    "fov60": (ViewsConfig(fov_deg=60.0), (16, 16)),
    "pitch15": (ViewsConfig(pitch_deg=[15.0]), (16, 16)),
    "anyres": (ViewsConfig(strategy="anyres"), (16, 16)),
    "cubemap4": (ViewsConfig(strategy="cubemap"), (16, 16)),
}


def _positions(layout, grid, kind):
    """Per view index: the ``(3, gh, gw)`` positions of its tokens in a synthetic sequence."""
    n = grid[0] * grid[1]
    parts = [torch.tensor([1, 2, 3])]
    for _ in layout.views:
        parts += [torch.full((n,), IMG), torch.tensor([4])]
    ids = torch.cat([*parts, torch.tensor([5, 6])])[None]
    pos = panorope_positions(
        ids, torch.ones_like(ids), layout, image_token_id=IMG, grid=grid, kind=kind
    ).double()
    pos = pos[:, 0] if kind == "mrope" else pos[0].expand(3, -1)
    starts = [3 + k * (n + 1) for k in range(len(layout.views))]
    return {
        v.index: pos[:, s : s + n].reshape(3, *grid)
        for v, s in zip(layout.views, starts, strict=True)
    }


def _lonlat_deg(view, grid):
    rays, _ = patch_centers_rays(view.geometry, view.size, grid)
    lon, lat = xyz_to_lonlat(rays)
    return torch.rad2deg(lon).view(grid), torch.rad2deg(lat).view(grid)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_tile_is_monotone_and_the_cut_lies_between_tiles(name):
    cfg, grid = LAYOUTS[name]
    layout = make_layout(cfg)
    for kind in ("mrope", "1d"):
        pos = _positions(layout, grid, kind)
        for v in layout.tiles:
            p = pos[v.index]
            if kind == "mrope":
                assert (p[2].diff(dim=1) > 0).all(), (name, v.index, p[2])  # w along rows
                assert (p[1].diff(dim=0) > 0).all(), (name, v.index)  # h down columns
            else:
                assert (p[0].flatten().diff() > 0).all(), (name, v.index)  # raster order
    # the ring is unrolled from the first tile: tiles of one ring in yaw order, the last one
    # running on past the ring length instead of wrapping back to 0
    w = _positions(layout, grid, "mrope")
    ring0 = [v for v in layout.tiles if v.ring == layout.tiles[0].ring]
    means = [float(w[v.index][2].mean()) for v in ring0]
    assert means == sorted(means)
    if len(ring0) > 2:
        first, last = w[ring0[0].index][2], w[ring0[-1].index][2]
        assert last.min() > first.max()  # no wrap inside the last tile


@pytest.mark.parametrize("name", ["anyres", "pitch-30+30", "pitch30", "default"])
def test_height_comes_from_latitude_and_distinct_directions_never_collide(name):
    cfg, grid = LAYOUTS[name]
    layout = make_layout(cfg)
    row_deg = layout.tiles[0].vfov_deg / grid[0]
    pos = _positions(layout, grid, "mrope")
    h = torch.stack([pos[v.index][1] for v in layout.tiles])  # (T, gh, gw)
    lat = torch.stack([_lonlat_deg(v, grid)[1] for v in layout.tiles])
    err = h + lat / row_deg  # constant up to the ties (< half a cell)
    assert (err - err.median()).abs().max() <= 0.55, (err - err.median()).abs().max()
    # tile tokens sharing (t, h, w) see the same direction (within one cell), never another one
    keys = torch.cat([pos[v.index].flatten(1).T for v in layout.tiles]).float()  # (N, 3)
    rays = torch.cat([patch_centers_rays(v.geometry, v.size, grid)[0] for v in layout.tiles])
    same = (keys[:, None] == keys[None]).all(-1)  # (N, N)
    same.fill_diagonal_(False)
    a, b = torch.nonzero(same).T
    angle = torch.rad2deg(torch.arccos((rays[a] * rays[b]).sum(-1).clamp(-1, 1)))
    assert len(a) == 0 or angle.max() < row_deg, (name, len(a), angle.max())


@pytest.mark.parametrize("name", ["default", "qwen-9x9", "fov60", "pitch15"])
def test_corresponding_tokens_share_positions_exactly(name):
    """M-RoPE: equal (h, w); across the cut (last tile -> first) h equal and w exactly R apart.

    1-D (what holds, exactly): ``pos_i - pos_j = (r_i - r_j) * S`` (+ R across the cut), i.e.
    corresponding tokens coincide iff they lie in the same grid row.
    """
    cfg, grid = LAYOUTS[name]
    layout = make_layout(cfg)
    ring = ring_columns(layout, grid[1])
    mrope, flat = _positions(layout, grid, "mrope"), _positions(layout, grid, "1d")
    stride = row_stride(layout, grid)
    last = layout.tiles[-1].index if len(layout.tiles) > 2 else None
    same_row = total = 0
    for pp in patch_correspondences(layout, grid, mutual=True):
        cut = pp.i == last and pp.j == layout.tiles[0].index
        a, b = mrope[pp.i].flatten(1)[:, pp.idx_i], mrope[pp.j].flatten(1)[:, pp.idx_j]
        assert torch.equal(a[:2], b[:2]), (name, pp.i, pp.j)  # t and h
        if cut:
            assert torch.allclose(a[2] - b[2], torch.full_like(a[2], ring), atol=1e-3)
        else:
            assert torch.equal(a[2], b[2]), (name, pp.i, pp.j, (a[2] - b[2]).abs().max())
        rows = (pp.idx_i // grid[1] - pp.idx_j // grid[1]).double()
        diff = flat[pp.i][0].flatten()[pp.idx_i] - flat[pp.j][0].flatten()[pp.idx_j]
        expected = rows * stride + (ring if cut else 0.0)
        assert torch.allclose(diff, expected, atol=1e-3), (name, pp.i, pp.j)
        same_row += int((rows == 0).sum())
        total += len(pp)
    assert total > 0 and same_row > 0


def test_near_a_pole_ties_give_way_to_monotone_tiles():
    """At pitch 30 a few groups would leave a member's window (see panorope): they stay untied,
    everything else is tied; the tiles stay monotone (test above)."""
    layout = make_layout(ViewsConfig(pitch_deg=[30.0]))
    pos = _positions(layout, (16, 16), "mrope")
    tied = total = 0
    for pp in patch_correspondences(layout, (16, 16), mutual=True):
        a, b = pos[pp.i][1].flatten()[pp.idx_i], pos[pp.j][1].flatten()[pp.idx_j]
        tied, total = tied + int((a == b).sum()), total + len(pp)
    assert 0.9 * total <= tied < total  # 728 of 760


POLE_VIEWS = [
    {"strategy": "cubemap", "cube_faces": 6},
    {"pitch_deg": [50.0]},
    {"pitch_deg": [0.0, -45.0]},
    {"strategy": "e2p", "fov_deg": 60.0, "vfov_deg": 100.0, "pitch_deg": [40.0]},
]
OK_VIEWS = [
    {},
    {"pitch_deg": [-30.0, 30.0]},
    {"pitch_deg": [44.0]},
    {"strategy": "anyres"},
    {"strategy": "cubemap"},
    {"strategy": "sliding_window"},
]


def _config(views, panorope=True):
    model = {"system": "panoadapt", "family": "qwen2_5_vl", "panorope": panorope}
    return config_from_dict({"views": views, "model": model})


@pytest.mark.parametrize("views", POLE_VIEWS)
def test_layouts_through_a_pole_are_refused_with_panorope(views):
    with pytest.raises(ConfigError, match="pole"):
        _config(views)
    _config(views, panorope=False)  # fine without PanoRoPE
    with pytest.raises(ValueError, match="pole"):
        check_panorope_layout(make_layout(ViewsConfig(**views)))


@pytest.mark.parametrize("views", OK_VIEWS)
def test_pole_free_layouts_are_accepted(views):
    _config(views)
    check_panorope_layout(make_layout(ViewsConfig(**views)))
