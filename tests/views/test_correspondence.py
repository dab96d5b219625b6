"""Patch correspondences from geometry, checked against an independent brute-force search."""

import pytest
import torch

from panollava.geometry import pixel_centers, view_rays
from panollava.views import make_layout, patch_correspondences
from panollava.views.correspondence import patch_centers_rays
from panollava.views.schema import ViewsConfig


def _brute_force(vi, vj, grid):
    """For each patch centre of i: the pixel of j whose ray is closest (exhaustive), -> patch."""
    rays_i, _ = patch_centers_rays(vi.geometry, vi.size, grid)
    xn, yn = pixel_centers(vj.geometry, vj.size, dtype=torch.float64)
    rays_j, _ = view_rays(vj.geometry, xn, yn)
    rays_j = rays_j.reshape(-1, 3)
    cos = rays_i @ rays_j.T  # (P, h*w)
    best = cos.argmax(1)
    pix_angle = torch.arccos(cos.max(1).values.clamp(max=1.0))
    h, w = vj.size
    # Inside j when the nearest pixel is closer than one pixel's angular size at that point.
    one_pixel = torch.arccos(
        (rays_j[best] * rays_j[(best + 1).clamp(max=h * w - 1)]).sum(-1).clamp(max=1)
    )
    inside = pix_angle <= one_pixel * 0.75
    row, col = best // w, best % w
    patch = (row // (h // grid[0])) * grid[1] + col // (w // grid[1])
    return {(a, int(patch[a])) for a in range(len(best)) if inside[a]}


def test_pairs_agree_with_brute_force_for_90deg_tiles_45deg_apart():
    layout = make_layout(ViewsConfig(tile_size=128))
    grid = (8, 8)
    pairs = patch_correspondences(layout, grid)
    assert len(pairs) == 8
    for pp in (pairs[0], pairs[-1]):  # a regular pair and the wrap pair
        ours = set(zip(pp.idx_i.tolist(), pp.idx_j.tolist(), strict=True))
        brute = _brute_force(layout.views[pp.i], layout.views[pp.j], grid)
        near_edge = {
            (a, b)
            for a, b, d in zip(pp.idx_i.tolist(), pp.idx_j.tolist(), pp.dist.tolist(), strict=True)
            if d > 0.45
        }
        assert ours - brute <= near_edge
        assert len(brute - ours) <= max(1, len(brute) // 20)
        assert len(ours) > 0


def test_ring_wraps_and_pairs_are_symmetric_in_count():
    layout = make_layout(ViewsConfig())
    pairs = patch_correspondences(layout)
    assert (pairs[-1].i, pairs[-1].j) == (8, 1)
    assert len({len(p) for p in pairs}) == 1  # every pair, wrap included, sees the same overlap
    # Patches of i matched into j sit in i's right half and j's left half.
    cols_i = pairs[0].idx_i % 16
    cols_j = pairs[0].idx_j % 16
    assert cols_i.min() >= 8 and cols_j.max() <= 7


def test_naive_column_mapping_is_off():
    """The right half of i is not the left half of j patch-for-patch (SYSTEM.md §2)."""
    pp = patch_correspondences(make_layout(ViewsConfig()))[0]
    naive = (pp.idx_i // 16) * 16 + (pp.idx_i % 16 - 8)
    assert (naive != pp.idx_j).any()


@pytest.mark.parametrize("cfg", [ViewsConfig(overlap=0.0), ViewsConfig(strategy="cubemap")])
def test_no_pairs_for_non_overlapping_layouts(cfg):
    pairs = patch_correspondences(make_layout(cfg))
    assert pairs and all(len(p) == 0 for p in pairs)


def test_mutual_matches_are_one_to_one():
    pp = patch_correspondences(make_layout(ViewsConfig()), mutual=True)[0]
    assert len(set(pp.idx_i.tolist())) == len(pp) == len(set(pp.idx_j.tolist()))
