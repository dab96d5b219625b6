"""PanoRoPE: panorama-aware position ids for the image tokens of a multimodal sequence.

Every tile token gets a *global yaw column* from the direction its patch centre actually sees:

    g = ((lon - lon_0) mod 360°) / (hfov / W),    lon_0 = yaw_first - hfov / 2

(``W`` token columns per tile; ``lon`` of the token's patch-centre ray; the ring of ``n`` tiles
spans ``n · s · W = 360 · W / hfov`` columns, ``s = 1 - overlap``). Positions come from the real
camera of each tile, so tokens of adjacent tiles that see the same longitude get the same width
position, the layout's overlap is the physical one, and the ring closes: the last tile's right
edge continues into the first tile's left edge modulo the ring. Because gnomonic tiles sample
longitude non-linearly, the patch centres of two adjacent tiles never coincide exactly (they are
up to ~0.4 column apart); geometrically corresponding tokens (mutual nearest patch centres) are
therefore tied to the mean of their two columns, so they share one position exactly, and every
token stays within half a column of its own longitude. The linear rule ``g = k·s·W + c`` would
give matched tokens positions a whole column apart over most of the overlap. Positions are
real-valued (``quantize=True`` rounds them).

* **M-RoPE** ``(3, B, L)`` (Qwen2-VL / Qwen2.5-VL: t, h, w): every tile block is placed at the
  same ring origin ``o`` with ``t = o``, ``h = o + row``, ``w = o + g``; the global view keeps its
  own grid (``t = o_g, h = o_g + row, w = o_g + col``) as in the family's default.
* **1-D** ``(B, L)`` (InternVL, Gemma3): tile token ``(row, g)`` gets ``o + row · ring + g`` with
  ``ring = 360 · W / hfov`` — the ring unrolled row by row, overlapping columns coincide again.

Text tokens (markers between images included) take running positions; text after the image
region continues after the largest position used (strictly greater than every image position).
Padding gets position 1 like HF; real tokens count from 0 at the first unpadded token, so a
prompt's positions are identical with or without an appended answer and under left padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch

from panollava.geometry import xyz_to_lonlat
from panollava.views import ViewLayout, ViewMeta
from panollava.views.correspondence import patch_centers_rays, patch_correspondences

__all__ = [
    "ImageBlock",
    "find_image_blocks",
    "global_columns",
    "panorope_positions",
    "ring_columns",
]


@dataclass(frozen=True)
class ImageBlock:
    """A run of image tokens: ``start`` index in the sequence, token grid and its view."""

    start: int
    grid_h: int
    grid_w: int
    view: ViewMeta

    @property
    def length(self) -> int:
        return self.grid_h * self.grid_w


def find_image_blocks(
    ids: torch.Tensor, image_token_id: int, grid: tuple[int, int], views: tuple[ViewMeta, ...]
) -> list[ImageBlock]:
    """The image-token runs of one sequence ``(L,)``, matched in order to ``views``."""
    is_img = (ids == image_token_id).long()
    edges = torch.diff(torch.cat([is_img.new_zeros(1), is_img, is_img.new_zeros(1)]))
    starts = torch.nonzero(edges == 1).flatten().tolist()
    ends = torch.nonzero(edges == -1).flatten().tolist()
    n = grid[0] * grid[1]
    if len(starts) != len(views) or any(e - s != n for s, e in zip(starts, ends, strict=True)):
        raise ValueError(
            f"expected {len(views)} runs of {n} image tokens (id {image_token_id}), found runs of "
            f"{[e - s for s, e in zip(starts, ends, strict=True)]}"
        )
    return [ImageBlock(s, grid[0], grid[1], v) for s, v in zip(starts, views, strict=True)]


def ring_columns(layout: ViewLayout, grid_w: int) -> float:
    """Global columns around one ring: ``360 · W / hfov`` (= ``n · s · W``)."""
    return 360.0 * grid_w / layout.tiles[0].hfov_deg


def _azimuth_columns(layout: ViewLayout, view: ViewMeta, grid: tuple[int, int]) -> torch.Tensor:
    """Continuous global column ``(gh, gw)`` of each token's patch-centre longitude."""
    first = next(v for v in layout.tiles if v.ring == view.ring)
    rays, _ = patch_centers_rays(view.geometry, view.size, grid)
    lon = torch.rad2deg(xyz_to_lonlat(rays)[0]).view(grid)  # (gh, gw) degrees
    lon0 = first.yaw_deg - first.hfov_deg / 2
    col_deg = view.hfov_deg / grid[1]
    return torch.remainder(lon - lon0, 360.0) / col_deg


@lru_cache(maxsize=32)
def _ring_table(layout: ViewLayout, grid: tuple[int, int]) -> dict[int, torch.Tensor]:
    """Global columns of every tile, matched tokens of adjacent tiles tied to one value.

    Geometrically corresponding tokens (mutual nearest patch centres, ``patch_correspondences``)
    of yaw-adjacent tiles get the mean of their two azimuth columns (on the ring's circle), so
    they share a position exactly; every token stays within half a column of its own longitude.
    """
    table = {v.index: _azimuth_columns(layout, v, grid).clone() for v in layout.tiles}
    total = ring_columns(layout, grid[1])
    for pp in patch_correspondences(layout, grid, mutual=True):
        a = table[pp.i].view(-1)[pp.idx_i]
        b = table[pp.j].view(-1)[pp.idx_j]
        delta = torch.remainder(b - a + total / 2, total) - total / 2  # shortest way round
        mean = torch.remainder(a + delta / 2, total)
        table[pp.i].view(-1)[pp.idx_i] = mean
        table[pp.j].view(-1)[pp.idx_j] = mean
    return table


def global_columns(layout: ViewLayout, view: ViewMeta, grid: tuple[int, int]) -> torch.Tensor:
    """Global yaw columns ``(gh, gw)`` (float) of a tile's tokens (see the module docstring)."""
    return _ring_table(layout, tuple(grid))[view.index].clone()


def _sample_positions(ids, mask, blocks, layout, kind, quantize) -> torch.Tensor:
    """Positions ``(3, L)`` float64 of one sequence (for 1-D, all three rows are equal)."""
    length = ids.shape[0]
    pos = torch.ones(3, length, dtype=torch.float64)
    block_at = {b.start: b for b in blocks}
    ring_origin: float | None = None
    top = -1.0  # largest position used so far
    t = 0
    while t < length:
        block = block_at.get(t) if bool(mask[t]) else None
        if not bool(mask[t]) or block is None:
            if bool(mask[t]):
                top = float(math.floor(top)) + 1.0  # text: the next integer position
                pos[:, t] = top
            t += 1
            continue
        rows = torch.arange(block.grid_h, dtype=torch.float64)[:, None].expand(
            block.grid_h, block.grid_w
        )
        if block.view.kind == "tile":
            ring_origin = float(math.floor(top)) + 1.0 if ring_origin is None else ring_origin
            cols = global_columns(layout, block.view, (block.grid_h, block.grid_w))
            if quantize:
                cols = cols.round()
            origin, width = ring_origin, ring_columns(layout, block.grid_w)
        else:
            cols = torch.arange(block.grid_w, dtype=torch.float64)[None].expand_as(rows)
            origin, width = float(math.floor(top)) + 1.0, float(block.grid_w)
        if kind == "mrope":
            grid_pos = torch.stack([torch.zeros_like(rows), rows, cols]) + origin  # (3, gh, gw)
        else:
            grid_pos = (origin + rows * (math.ceil(width) if quantize else width) + cols).expand(
                3, -1, -1
            )
        pos[:, t : t + block.length] = grid_pos.reshape(3, -1)
        top = max(top, float(grid_pos.max()))
        t += block.length
    return pos


def panorope_positions(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layout: ViewLayout,
    *,
    image_token_id: int,
    grid: tuple[int, int],
    kind: Literal["mrope", "1d"],
    quantize: bool = False,
) -> torch.Tensor:
    """PanoRoPE position ids: ``(3, B, L)`` for ``mrope``, ``(B, L)`` for ``1d``.

    Real-valued (float32) unless ``quantize`` (then integer-valued long tensors).
    """
    out = []
    for ids, mask in zip(input_ids, attention_mask, strict=True):
        blocks = find_image_blocks(ids, image_token_id, grid, layout.views)
        out.append(_sample_positions(ids.cpu(), mask.cpu().bool(), blocks, layout, kind, quantize))
    pos = torch.stack(out, 1)  # (3, B, L)
    pos = pos.long() if quantize else pos.float()
    pos = pos.to(input_ids.device)
    return pos if kind == "mrope" else pos[0]
