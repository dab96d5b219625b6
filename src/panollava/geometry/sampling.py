"""Sampling ERP images through view cameras, with spherical padding and cached grids.

``sample_views(erp, geoms, out_hw)`` renders any list of :class:`ViewGeometry` from a batch of ERPs
in one ``grid_sample`` call. Correct at the ±180° seam (columns wrap) and at the poles (the row
beyond a pole is the same row seen from the opposite longitude). Grids are cached per
(layout, input size, output size, device, dtype).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F

from panollava.geometry.projection import ViewGeometry, erp_coords_for_view

__all__ = ["Interpolation", "pad_erp", "required_erp_width", "sample_erp", "sample_views"]

Interpolation = Literal["bilinear", "bicubic", "nearest"]
_PAD = {"nearest": 1, "bilinear": 1, "bicubic": 2}


def pad_erp(erp: torch.Tensor, pad: int) -> torch.Tensor:
    """Spherically pad ERPs ``(B, C, H, W)`` -> ``(B, C, H + 2 pad, W + 2 pad)``.

    Columns wrap around the seam; rows past a pole come from the mirrored rows, rolled by 180°
    (``W // 2`` columns: for an odd width the antipode is off by half a pixel).
    """
    if pad <= 0:
        return erp
    h, w = erp.shape[-2:]
    if pad > h:
        raise ValueError(f"cannot pole-pad an ERP of size {h}x{w} by {pad}")
    top = torch.roll(erp[..., :pad, :].flip(-2), w // 2, dims=-1)  # (B, C, pad, W)
    bottom = torch.roll(erp[..., -pad:, :].flip(-2), w // 2, dims=-1)
    tall = torch.cat((top, erp, bottom), dim=-2)  # (B, C, H + 2 pad, W)
    return torch.cat((tall[..., -pad:], tall, tall[..., :pad]), dim=-1)


def _normalized_grid(coords: torch.Tensor, erp_hw: tuple[int, int], pad: int) -> torch.Tensor:
    """ERP pixel coordinates ``(..., 2)`` -> ``grid_sample`` grid over the ``pad``-padded ERP."""
    h, w = erp_hw
    x = torch.remainder(coords[..., 0] + 0.5, w) - 0.5 + pad  # into padded pixel space
    y = coords[..., 1] + pad
    hp, wp = h + 2 * pad, w + 2 * pad
    return torch.stack(((x + 0.5) * (2.0 / wp) - 1.0, (y + 0.5) * (2.0 / hp) - 1.0), -1)


def sample_erp(
    erp: torch.Tensor,
    coords: torch.Tensor,
    mode: Interpolation = "bilinear",
) -> torch.Tensor:
    """Sample ERPs ``(B, C, H, W)`` at pixel coordinates ``(B or 1, h, w, 2)`` -> ``(B, C, h, w)``.

    Coordinates follow :mod:`.sphere` (pixel centres at integers); ``x`` may be any real number
    (it is wrapped), ``y`` must lie within ``[-0.5, H - 0.5]``.
    """
    pad = _PAD[mode]
    grid = _normalized_grid(coords, tuple(erp.shape[-2:]), pad).to(erp.dtype)
    return _grid_sample(erp, grid, mode, pad)


def _grid_sample(
    erp: torch.Tensor, grid: torch.Tensor, mode: Interpolation, pad: int
) -> torch.Tensor:
    padded = pad_erp(erp, pad)  # (B, C, H + 2p, W + 2p)
    grid = grid.expand(erp.shape[0], *grid.shape[1:])
    return F.grid_sample(padded, grid, mode=mode, padding_mode="border", align_corners=False)


@lru_cache(maxsize=64)
def _cached_grid(
    geoms: tuple[ViewGeometry, ...],
    out_hw: tuple[int, int],
    erp_hw: tuple[int, int],
    pad: int,
    device: str,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ready-to-use sampling grid of a layout (normalised for the padded ERP) and its
    validity mask (``None`` when every pixel is valid, the common case)."""
    exact = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    coords, valid = zip(
        *(erp_coords_for_view(g, out_hw, erp_hw, dtype=exact, device=device) for g in geoms),
        strict=True,
    )
    # Views stacked along the height axis so one grid_sample call renders them all.
    grid = _normalized_grid(torch.cat(coords, 0)[None], erp_hw, pad)  # (1, V*h, w, 2)
    grid = grid.to(dtype).contiguous()
    mask = torch.stack(valid, 0)  # (V, h, w)
    return grid, None if bool(mask.all()) else mask


def sample_views(
    erp: torch.Tensor,
    geoms: tuple[ViewGeometry, ...] | list[ViewGeometry],
    out_hw: tuple[int, int],
    mode: Interpolation = "bilinear",
) -> torch.Tensor:
    """Render views of ERPs ``(B, C, H, W)`` -> ``(B, V, C, h, w)``; invalid pixels are zero."""
    if erp.ndim != 4:
        raise ValueError(f"erp must be (B, C, H, W), got shape {tuple(erp.shape)}")
    geoms = tuple(geoms)
    src = erp if erp.is_floating_point() else erp.float()
    pad = _PAD[mode]
    grid, valid = _cached_grid(
        geoms, tuple(out_hw), tuple(src.shape[-2:]), pad, str(src.device), src.dtype
    )
    out = _grid_sample(src.contiguous(), grid, mode, pad)  # (B, C, V*h, w)
    b, c = out.shape[:2]
    out = out.view(b, c, len(geoms), *out_hw).transpose(1, 2)  # (B, V, C, h, w)
    if valid is not None:
        out = out * valid[None, :, None].to(out.dtype)
    return out


def required_erp_width(geoms: list[ViewGeometry] | tuple[ViewGeometry, ...], out_hw) -> int:
    """Smallest ERP width whose pixels are not coarser than the views' finest pixels.

    A gnomonic view of width ``w`` has focal length ``f = w / (2 tan(hfov / 2))`` pixels per
    radian at its centre (its densest point), and the ERP has ``W / (2 pi)``; so ``W >= 2 pi f``
    (likewise for the vertical axis, with ``H = W / 2``). Equirect windows need
    ``W >= w * 360 / hfov``.
    """
    h, w = out_hw
    need = 0.0
    for g in geoms:
        if g.projection == "gnomonic":
            fx = w / (2 * math.tan(math.radians(g.hfov_deg) / 2))
            fy = h / (2 * math.tan(math.radians(g.vfov_deg) / 2))
            need = max(need, 2 * math.pi * fx, 2 * math.pi * fy)
        else:
            need = max(need, w * 360.0 / g.hfov_deg, 2 * h * 180.0 / g.vfov_deg)
    return math.ceil(need)
