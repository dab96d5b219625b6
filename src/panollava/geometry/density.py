"""How densely a view samples the ERP: pixel steps in ERP pixels, footprints, required ERP width.

A view pixel step (one column right, ``a``, or one row down, ``b``) moves its sampling point by a
2-vector in ERP pixels. Where both steps are shorter than one ERP pixel the view is finer than the
ERP (it magnifies, so the ERP must be decoded larger); where they are longer, the view minifies
(and must be prefiltered, see :mod:`.sampling`). A gnomonic view is *sparsest* at its centre:
towards its edges the angle per pixel shrinks by ``cos^2`` of the off-axis angle (2x at the edge
of a 90° view), and corners and pitch change it further — so the extremes are measured over every
pixel of the view, never assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

from panollava.geometry.projection import ViewGeometry, erp_coords_for_view

__all__ = ["footprint", "pixel_steps", "required_erp_width"]

_REF_WIDTH = 4096  # any ERP width works: steps scale linearly with it


def pixel_steps(coords: torch.Tensor, erp_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ERP displacement of one view column ``a`` and one view row ``b``, each ``(..., h, w, 2)``.

    ``coords`` ``(..., h, w, 2)`` are the ERP pixel coordinates (x, y) of a view's pixel centres
    (``x`` unwrapped); x steps are wrapped to the nearest way round the seam. Forward differences,
    the last column/row repeating its neighbour's step.
    """
    a = coords[..., :, 1:, :] - coords[..., :, :-1, :]
    b = coords[..., 1:, :, :] - coords[..., :-1, :, :]
    a = torch.cat((a, a[..., :, -1:, :]), -2) if a.shape[-2] else torch.zeros_like(coords)
    b = torch.cat((b, b[..., -1:, :, :]), -3) if b.shape[-3] else torch.zeros_like(coords)
    half = erp_width / 2
    a = torch.stack((torch.remainder(a[..., 0] + half, erp_width) - half, a[..., 1]), -1)
    b = torch.stack((torch.remainder(b[..., 0] + half, erp_width) - half, b[..., 1]), -1)
    return a, b


def footprint(coords: torch.Tensor, erp_width: int) -> torch.Tensor:
    """ERP pixels covered by one view pixel, ``(..., h, w)``: the longer of its two steps
    (the conservative, alias-free choice of GPU mipmapping)."""
    a, b = pixel_steps(coords, erp_width)
    return torch.maximum(a.norm(dim=-1), b.norm(dim=-1))


@lru_cache(maxsize=256)
def _gnomonic_need(geom: ViewGeometry, out_hw: tuple[int, int]) -> float:
    hw = (_REF_WIDTH // 2, _REF_WIDTH)
    coords, _ = erp_coords_for_view(geom, out_hw, hw, dtype=torch.float64)  # (h, w, 2)
    a, b = pixel_steps(coords, _REF_WIDTH)
    smallest = float(torch.minimum(a.norm(dim=-1), b.norm(dim=-1)).min())
    return _REF_WIDTH / max(smallest, 1e-12)


def required_erp_width(geoms: Sequence[ViewGeometry], out_hw: Sequence[int]) -> int:
    """Smallest ERP width at which no view pixel step (one column or one row, anywhere in any
    view) is shorter than one ERP pixel: the ERP is nowhere coarser than a view, even at the
    view's densest point.

    Gnomonic views are measured at every pixel (``pixel_steps``): their edges need
    ``1 / cos^2(fov / 2)`` times the centre's width (2x at 90°), corners and pitch move the
    extremes further. Near a pole the ERP's rows are oversampled, which the steps in ERP pixels
    account for. Equirect windows are uniform: ``W >= w * 360 / hfov`` and
    ``H = W / 2 >= h * 180 / vfov``.
    """
    h, w = int(out_hw[0]), int(out_hw[1])
    need = 0.0
    for g in geoms:
        if g.projection == "gnomonic":
            need = max(need, _gnomonic_need(g, (h, w)))
        else:
            need = max(need, w * 360.0 / g.hfov_deg, 2 * h * 180.0 / g.vfov_deg)
    return math.ceil(need - 1e-6)
