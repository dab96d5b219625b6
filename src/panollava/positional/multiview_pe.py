"""Multi-view positional encoding and view stitching for the custom PanoLLaVA model.

**PE.** Every token gets an additive code computed from the *direction its patch centre sees*
(cast from the view's camera), not from its view index: half the channels are
``sin(k·lon), cos(k·lon)`` with integer ``k = 1..D/4`` — exactly 360°-periodic, so two tokens
seeing the same direction get the same code even across the ±180° seam — and half are the usual
``sin/cos(lat · ω_i)`` sinusoids with ``ω_i = temperature^(-i / (D/4))``.

**Stitching.** ``concat`` keeps all tokens. ``stride_views`` drops, from every tile but the
first of its ring, the tokens whose patch centres lie inside the tile's left neighbour (by
geometry, not a column count). For 90° tiles at 45° on a 16×16 grid the left 8 columns are
covered except for rows near the top and bottom, where the gnomonic neighbour's frustum is
narrower: the exact count is therefore a little above the 8 × 16 column approximation.
"""

from __future__ import annotations

import torch
from torch import nn

from panollava.geometry import project_to_view, xyz_to_lonlat
from panollava.views import ViewLayout
from panollava.views.correspondence import patch_centers_rays

__all__ = ["MultiViewPE", "direction_codes", "stitch_keep_index", "token_directions"]


def token_directions(
    layout: ViewLayout, grid: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lon, lat)`` radians ``(V, gh*gw)`` of every view's patch centres (float64)."""
    lons, lats = [], []
    for v in layout.views:
        rays, _ = patch_centers_rays(v.geometry, v.size, grid)
        lon, lat = xyz_to_lonlat(rays)
        lons.append(lon)
        lats.append(lat)
    return torch.stack(lons), torch.stack(lats)


def direction_codes(
    lon: torch.Tensor, lat: torch.Tensor, dim: int, temperature: float
) -> torch.Tensor:
    """Codes ``(..., dim)`` for directions ``(...)`` (see the module docstring)."""
    quarter = dim // 4
    k = torch.arange(1, quarter + 1, dtype=lon.dtype)  # integer harmonics of longitude
    omega = temperature ** (-torch.arange(quarter, dtype=lat.dtype) / max(quarter, 1))
    parts = [
        torch.sin(lon[..., None] * k),
        torch.cos(lon[..., None] * k),
        torch.sin(lat[..., None] * omega),
        torch.cos(lat[..., None] * omega),
    ]
    code = torch.cat(parts, -1)
    if code.shape[-1] < dim:  # dim not divisible by 4: zero-pad the rest
        code = torch.nn.functional.pad(code, (0, dim - code.shape[-1]))
    return code


class MultiViewPE(nn.Module):
    """``x (B, V, N, D) -> x + dropout(code)`` with the codes of ``layout`` on ``grid`` (cached)."""

    def __init__(
        self,
        dim: int,
        layout: ViewLayout,
        grid: tuple[int, int],
        *,
        temperature: float = 10000.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        lon, lat = token_directions(layout, grid)
        self.register_buffer(
            "code", direction_codes(lon, lat, dim, temperature).float(), persistent=False
        )  # (V, N, D)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.code.to(x.dtype))


def stitch_keep_index(
    layout: ViewLayout, grid: tuple[int, int], mode: str = "concat"
) -> torch.Tensor:
    """Flat indices ``(K,)`` into the view-major ``V * gh * gw`` tokens that ``mode`` keeps."""
    n = grid[0] * grid[1]
    keep = torch.ones(len(layout), n, dtype=torch.bool)
    if mode == "stride_views":
        first_of_ring = {}
        for v in layout.tiles:
            first_of_ring.setdefault(v.ring, v.index)
        for i, j in layout.pairs:
            if j == first_of_ring.get(layout.views[j].ring):
                continue  # the wrap pair: the ring's first tile keeps all its tokens
            vj, vi = layout.views[j], layout.views[i]
            rays, _ = patch_centers_rays(vj.geometry, vj.size, grid)
            covered = project_to_view(vi.geometry, rays)[2]  # (N,) j's patch centres seen by i
            keep[j] &= ~covered
    elif mode != "concat":
        raise ValueError(f"unknown stitching {mode!r}; use 'concat' or 'stride_views'")
    return torch.nonzero(keep.flatten()).flatten()
