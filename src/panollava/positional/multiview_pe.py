"""Multi-view positional encoding and view stitching for the custom PanoLLaVA model.

**PE.** Every token gets an additive code computed from the *direction* ``d`` (unit vector) its
patch centre sees, cast from the view's camera, not from its view index: ``D/2`` sin/cos pairs

    code_k(d) = sin(ω_k · u_k·d), cos(ω_k · u_k·d),   k = 1..D/2

spherical Fourier features. The axes ``u_k`` are a Fibonacci lattice on the sphere (every
direction, latitude as much as longitude); the frequencies ``ω_k`` are log-spaced from panorama
scale (``ω = 1``: one period per great circle, 360°) to patch scale (the shortest period is
``shortest_period_patches`` patch angles: 3 by default, 2 = Nyquist, so neighbouring patches
never alias; views with coarser patches drop the bands they cannot resolve). A √2 Kronecker
sequence, independent of the lattice's golden-ratio azimuths, assigns frequencies to axes, so
every band sees every direction. The cosine similarity of two codes is
``mean_k cos(ω_k u_k·(d1 - d2))``: a function of the two directions alone (no seam at ±180°, no
pole singularity) that falls with their angular distance. Measured on the default layout by
``benchmarks/pe_separation.py``: corresponding tokens 0.98, neighbours in one tile 0.90,
tokens of the opposite tile 0.03 (the previous PE: 0.61, 0.50 horizontally but 1.00 vertically,
0.49).

**Stitching.** ``concat`` keeps all tokens. ``stride_views`` drops, from every tile but the
first of its ring, the tokens whose patch centres lie inside the tile's left neighbour (by
geometry, not a column count). For 90° tiles at 45° on a 16×16 grid the left 8 columns are
covered except near the top and bottom rows, where the gnomonic neighbour's frustum is narrower:
each such tile drops 120 tokens, not 8 × 16 = 128, so the default layout keeps
256 (global) + 256 (first tile) + 7 × 136 = 1,464 tokens (1,208 tile tokens, not SYSTEM.md's
1,152, which assumed whole columns).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from panollava.geometry import lonlat_to_xyz, project_to_view, xyz_to_lonlat
from panollava.views import ViewLayout, patch_correspondences
from panollava.views.correspondence import patch_centers_rays

__all__ = [
    "MultiViewPE",
    "code_separation",
    "direction_codes",
    "finest_patch_deg",
    "stitch_keep_index",
    "token_directions",
]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # azimuth step of the Fibonacci lattice
_SQRT2 = math.sqrt(2.0) - 1.0  # frequency step: rationally independent of the golden ratio


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


def finest_patch_deg(layout: ViewLayout, grid: tuple[int, int]) -> float:
    """The smallest mean patch angle (degrees) of any view: ``min(hfov / gw, vfov / gh)``."""
    return min(min(v.hfov_deg / grid[1], v.vfov_deg / grid[0]) for v in layout.views)


def _fourier_basis(pairs: int, shortest_period_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Axes ``(K, 3)`` (Fibonacci lattice) and frequencies ``(K,)`` (log-spaced, golden order)."""
    k = torch.arange(pairs, dtype=torch.float64)
    z = 1.0 - (2.0 * k + 1.0) / pairs  # (K,) uniform in z: equal-area rings
    phi = 2.0 * math.pi * torch.remainder(k * _GOLDEN, 1.0)
    r = torch.sqrt(1.0 - z * z)
    axes = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)
    top = max(360.0 / shortest_period_deg, 1.0)
    frac = torch.remainder((k + 0.5) * _SQRT2, 1.0)  # independent of the axes' z and azimuth
    return axes, top**frac  # ω in [1, top]: periods from 360° down to shortest_period_deg


def direction_codes(
    lon: torch.Tensor,
    lat: torch.Tensor,
    dim: int,
    *,
    shortest_period_deg: float,
    patch_deg: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Codes ``(..., dim)`` for directions ``(...)`` (radians; see the module docstring).

    ``patch_deg`` (scalar or broadcastable to ``lon``): the patch angle of each token's view;
    pairs whose period is under two patch angles would alias there and are zeroed.
    """
    if shortest_period_deg <= 0:
        raise ValueError(f"shortest_period_deg must be > 0, got {shortest_period_deg}")
    axes, omega = _fourier_basis(dim // 2, shortest_period_deg)
    d = lonlat_to_xyz(lon.double(), lat.double())  # (..., 3)
    phase = (d @ axes.T) * omega  # (..., K)
    patch = torch.as_tensor(patch_deg, dtype=torch.float64)
    keep = (360.0 / omega >= 2.0 * patch[..., None] - 1e-9).double()  # (..., K)
    code = torch.cat([torch.sin(phase) * keep, torch.cos(phase) * keep], -1)
    if code.shape[-1] < dim:  # odd dim: one zero channel
        code = torch.nn.functional.pad(code, (0, dim - code.shape[-1]))
    return code.to(lon.dtype)


class MultiViewPE(nn.Module):
    """``x (B, V, N, D) -> x + dropout(code)`` with the codes of ``layout`` on ``grid`` (cached).

    ``shortest_period_patches``: the finest band's period in units of the finest patch angle
    (:func:`finest_patch_deg`); 2 is the Nyquist limit. Views with coarser patches (the global
    view: 22.5° x 11.25° on 16x16) get only the bands they resolve (``direction_codes``).
    """

    def __init__(
        self,
        dim: int,
        layout: ViewLayout,
        grid: tuple[int, int],
        *,
        shortest_period_patches: float = 3.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if shortest_period_patches < 2.0:
            raise ValueError(
                f"shortest_period_patches={shortest_period_patches} aliases at patch scale; "
                "use >= 2 (Nyquist)"
            )
        lon, lat = token_directions(layout, grid)
        period = shortest_period_patches * finest_patch_deg(layout, grid)
        patch = torch.tensor(
            [max(v.hfov_deg / grid[1], v.vfov_deg / grid[0]) for v in layout.views],
            dtype=torch.float64,
        )[:, None]  # (V, 1): each view's coarser patch angle
        code = direction_codes(lon, lat, dim, shortest_period_deg=period, patch_deg=patch)
        self.register_buffer("code", code.float(), persistent=False)  # (V, N, D)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.code.to(x.dtype))


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def code_separation(
    code: torch.Tensor, layout: ViewLayout, grid: tuple[int, int]
) -> dict[str, float]:
    """Mean cosine similarity of the codes ``(V, gh*gw, D)`` of token pairs, by relation.

    ``corresponding``: geometric matches of adjacent tiles (mutual nearest patch centres);
    ``neighbour_h`` / ``neighbour_v``: horizontally / vertically adjacent tokens of one tile;
    ``opposite``: every token pair of a tile and the tile 180° of yaw away on its ring.
    """
    code = code.double()
    pairs = patch_correspondences(layout, grid, mutual=True)
    corr = torch.cat([_cos(code[p.i, p.idx_i], code[p.j, p.idx_j]) for p in pairs])
    tiles = [v.index for v in layout.tiles]
    g = code[tiles].view(len(tiles), *grid, -1)  # (T, gh, gw, D)
    unit = torch.nn.functional.normalize(code, dim=-1)
    opposite = []
    for v in layout.tiles:
        across = [
            u
            for u in layout.tiles
            if u.ring == v.ring and abs(((u.yaw_deg - v.yaw_deg) % 360.0) - 180.0) < 1e-6
        ]
        opposite += [(unit[v.index] @ unit[u.index].T).mean() for u in across]
    return {
        "corresponding": float(corr.mean()),
        "neighbour_h": float(_cos(g[:, :, 1:], g[:, :, :-1]).mean()),
        "neighbour_v": float(_cos(g[:, 1:], g[:, :-1]).mean()),
        "opposite": float(torch.stack(opposite).mean()) if opposite else math.nan,
    }


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
