"""Exact patch correspondences between adjacent views, from geometry.

For a pair ``(i, j)``, every patch centre of view ``i`` is cast to the sphere and projected into
view ``j``; a pair of patches is kept when the projection lands inside ``j`` within ``tolerance``
(in patch units) of a patch centre of ``j``. No "right k columns = left k columns" shortcut: for
90° tiles 45° apart that shortcut is off by more than a patch near the top and bottom rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from panollava.geometry import (
    ViewGeometry,
    pixel_to_view,
    project_to_view,
    view_rays,
    view_to_pixel,
)
from panollava.views.layout import ViewLayout

__all__ = ["PatchPairs", "patch_centers_rays", "patch_correspondences", "view_patch_matches"]


@dataclass(frozen=True)
class PatchPairs:
    """Corresponding patches of views ``i`` and ``j``.

    ``idx_i``, ``idx_j``: ``(K,)`` long, raster indices ``row * grid_w + col`` into each view's patch
    grid; ``dist``: ``(K,)`` distance (patch units, max-norm) between the projected centre and
    the matched patch centre of ``j``.
    """

    i: int
    j: int
    idx_i: torch.Tensor
    idx_j: torch.Tensor
    dist: torch.Tensor

    def __len__(self) -> int:
        return int(self.idx_i.numel())

    def reindexed(self, i: int, j: int) -> PatchPairs:
        """The same correspondences under new view indices (e.g. positions among the tiles)."""
        return PatchPairs(i, j, self.idx_i, self.idx_j, self.dist)


def patch_centers_rays(
    geom: ViewGeometry, hw: tuple[int, int], grid: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """World rays ``(gh * gw, 3)`` of the patch centres of a view, raster order, and validity."""
    gh, gw = grid
    ph, pw = hw[0] / gh, hw[1] / gw
    py = (torch.arange(gh, dtype=torch.float64) + 0.5) * ph - 0.5
    px = (torch.arange(gw, dtype=torch.float64) + 0.5) * pw - 0.5
    py, px = torch.meshgrid(py, px, indexing="ij")  # (gh, gw)
    xn, yn = pixel_to_view(geom, px, py, hw)
    rays, valid = view_rays(geom, xn, yn)
    return rays.reshape(-1, 3), valid.reshape(-1)


def view_patch_matches(
    geom_i: ViewGeometry,
    hw_i: tuple[int, int],
    geom_j: ViewGeometry,
    hw_j: tuple[int, int],
    grid: tuple[int, int],
    tolerance: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(idx_i, idx_j, dist)`` for patches of ``i`` whose centres land in ``j`` (see module doc)."""
    gh, gw = grid
    rays, valid = patch_centers_rays(geom_i, hw_i, grid)
    xn, yn, inside = project_to_view(geom_j, rays)
    px, py = view_to_pixel(geom_j, xn, yn, hw_j)
    qx = (px + 0.5) / (hw_j[1] / gw) - 0.5  # continuous patch coordinates of j
    qy = (py + 0.5) / (hw_j[0] / gh) - 0.5
    col, row = qx.round(), qy.round()
    dist = torch.maximum((qx - col).abs(), (qy - row).abs())
    keep = valid & inside & (col >= 0) & (col < gw) & (row >= 0) & (row < gh) & (dist <= tolerance)
    idx_i = torch.nonzero(keep).flatten()
    idx_j = (row[keep] * gw + col[keep]).long()
    return idx_i, idx_j, dist[keep].float()


@lru_cache(maxsize=64)
def _cached(
    layout: ViewLayout, grid: tuple[int, int], tolerance: float, mutual: bool
) -> tuple[PatchPairs, ...]:
    out = []
    for i, j in layout.pairs:
        vi, vj = layout.views[i], layout.views[j]
        a_i, a_j, dist = view_patch_matches(
            vi.geometry, vi.size, vj.geometry, vj.size, grid, tolerance
        )
        if mutual and len(a_i):
            b_j, b_i, _ = view_patch_matches(
                vj.geometry, vj.size, vi.geometry, vi.size, grid, tolerance
            )
            back = torch.full((grid[0] * grid[1],), -1, dtype=torch.long)
            back[b_j] = b_i
            keep = back[a_j] == a_i
            a_i, a_j, dist = a_i[keep], a_j[keep], dist[keep]
        out.append(PatchPairs(i, j, a_i, a_j, dist))
    return tuple(out)


def patch_correspondences(
    layout: ViewLayout,
    grid: tuple[int, int] = (16, 16),
    *,
    tolerance: float = 0.5,
    mutual: bool = False,
) -> tuple[PatchPairs, ...]:
    """Corresponding patches for every adjacent pair of ``layout.pairs`` (wrap pair included).

    ``grid`` is the patch grid ``(rows, cols)`` of every view (e.g. 16x16 for a 256² view with
    16-px patches). ``tolerance`` (patch units) bounds how far a projected centre may be from the
    matched patch's centre: 0.5 accepts any landing inside the patch. ``mutual`` keeps only pairs
    that are each other's match in both directions (one-to-one). Cached per arguments.
    """
    if not 0 < tolerance <= 0.5:
        raise ValueError(f"tolerance must be in (0, 0.5] patch units, got {tolerance}")
    return _cached(layout, tuple(grid), float(tolerance), bool(mutual))
