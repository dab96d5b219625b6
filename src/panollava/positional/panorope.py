"""PanoRoPE: panorama-aware position ids for the image tokens of a multimodal sequence.

**Geometry.** Every tile token gets a height ``h`` and a width ``w`` from the direction its patch
centre actually sees, in cell units (``row_deg = vfov / H``, ``col_deg = hfov / W`` of the tiles):

    h = (lat_top - lat) / row_deg          w = (Y_k + wrap(lon - yaw_k) - Y_min) / col_deg

``lat_top`` is the highest patch-centre latitude of any tile, so ``h`` starts at 0 and rings or
grid rows at other latitudes get other heights (tiles 90° of latitude apart are 16 rows apart).
``Y_k = (yaw_k - yaw_first) mod 360`` unrolls the yaw ring from the first tile (``yaw_offset``);
``wrap(lon - yaw_k)`` is the token's longitude seen from its own tile's centre, in (-180, 180].

**The cut.** A linear position cannot close a ring, so the ring is cut **between the last tile
and the first** (the wrap pair): every tile keeps its own positions monotone (``w`` strictly
increases along every row, ``h`` strictly down every column), the first tile starts at ``w ≈ 0``
and the last tile runs on past the ring length ``R = 360 / col_deg`` instead of jumping back.

**Ties.** Gnomonic patch centres of adjacent tiles never coincide exactly (up to ~0.4 cell
apart), so geometrically corresponding tokens (mutual nearest patch centres,
``patch_correspondences``) are tied: each connected group (two tokens, or three on odd grids where
a tile's centre column meets both neighbours' edges) gets the mean of its members' ``(h, w)``.
Corresponding tokens of adjacent tiles therefore share ``(h, w)`` exactly; across the cut (last
tile -> first tile) their ``h`` is equal and their ``w`` exactly ``R`` apart. A group stays
untied when its mean would move a member past halfway to its own neighbour (that would break
the tile's order): never on horizon rings, a few groups near the poles (pitch 30: 728 of 760
matches tied). So every token stays closer to its own direction than its neighbours are (within
0.26 cell on the default 16×16 layout).

**Refused layouts.** A tile that contains (or touches) a pole sees every longitude: no monotone
``w`` exists (cubemap U/D faces; gnomonic rings with ``|pitch| + vfov / 2 >= 90``).
:func:`check_panorope_layout` refuses them (the config refuses them earlier, see
``panollava.config``).

* **M-RoPE** ``(3, B, L)`` (Qwen2-VL / Qwen2.5-VL: t, h, w): all tiles share one origin ``o``:
  ``t = o``, ``h = o + h``, ``w = o + w``. The global view keeps its own grid as in the family's
  default (``t = o_g, h = o_g + row, w = o_g + col``).
* **1-D** ``(B, L)`` (InternVL, Gemma3): tile token (grid row ``r``, ring ``k``) gets
  ``o + (ρ_k + r) · S + w`` with row stride ``S = floor(max w) + 1`` and ring row offset
  ``ρ_k = H · (rank of ring k by pitch, top first)`` (anyres grid rows: exactly their latitude
  order; rings that overlap in latitude are stacked all the same). What holds, exactly:
  positions strictly increase in raster order inside a tile; a 1-D position cannot hold a second
  dimension, so two corresponding tokens of adjacent tiles differ by exactly ``(r_i - r_j) · S``
  (plus ``R`` across the cut): they coincide when they lie in the same grid row (448 of 704
  matches on the default 16×16 layout, 232 of 296 on 9×9); away from the centre row the
  gnomonic vertical scales of adjacent tiles differ, so the others are one or more rows apart.

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
    "block_positions",
    "check_panorope_layout",
    "find_image_blocks",
    "global_columns",
    "panorope_positions",
    "position_grids",
    "ring_columns",
    "row_stride",
    "tile_positions",
]

RopeKind = Literal["mrope", "1d"]


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
    """Columns around one ring: ``R = 360 · W / hfov`` (= ``n · s · W``)."""
    return 360.0 * grid_w / layout.tiles[0].hfov_deg


def check_panorope_layout(layout: ViewLayout) -> None:
    """Raise ``ValueError`` (saying why) when PanoRoPE cannot give ``layout`` monotone positions."""
    for v in layout.tiles:
        if v.geometry.projection == "gnomonic" and abs(v.pitch_deg) + v.vfov_deg / 2 >= 90.0:
            raise ValueError(
                f"PanoRoPE cannot place tile {v.index} ({v.name or 'yaw'} {v.yaw_deg:+.0f}°, "
                f"pitch {v.pitch_deg:+.0f}°, vfov {v.vfov_deg:.0f}°): it reaches the pole "
                f"(|pitch| + vfov/2 = {abs(v.pitch_deg) + v.vfov_deg / 2:.0f}° >= 90°), where "
                "every longitude meets, so no width position can increase along its rows. Use "
                "|pitch| + vfov/2 < 90 (cubemap: cube_faces 4) or set model.panorope: false."
            )


def _geo_cells(layout: ViewLayout, grid: tuple[int, int]) -> dict[int, torch.Tensor]:
    """Untied geometric ``(h, w)`` cells ``(2, gh, gw)`` of every tile (module docstring)."""
    first = layout.tiles[0]
    row_deg, col_deg = first.vfov_deg / grid[0], first.hfov_deg / grid[1]
    raw = {}
    for v in layout.tiles:
        rays, _ = patch_centers_rays(v.geometry, v.size, grid)
        lon, lat = (torch.rad2deg(a).view(grid) for a in xyz_to_lonlat(rays))
        unrolled = (v.yaw_deg - first.yaw_deg) % 360.0
        rel = torch.remainder(lon - v.yaw_deg + 180.0, 360.0) - 180.0  # (-180, 180]
        raw[v.index] = torch.stack([-lat, unrolled + rel])  # (2, gh, gw) degrees
    low = torch.stack([r.amin(dim=(1, 2)) for r in raw.values()]).amin(0)  # (2,)
    scale = torch.tensor([row_deg, col_deg], dtype=torch.float64)
    return {k: (r - low[:, None, None]) / scale[:, None, None] for k, r in raw.items()}


def _crosses_cut(layout: ViewLayout, i: int, j: int) -> bool:
    """Is the adjacent pair ``(i, j)`` the wrap pair, i.e. ``j`` unrolled before ``i``?"""
    y0 = layout.tiles[0].yaw_deg
    return (layout.views[j].yaw_deg - y0) % 360.0 < (layout.views[i].yaw_deg - y0) % 360.0


def _windows(cells: dict[int, torch.Tensor]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per tile ``(lo, hi)`` ``(2, gh, gw)``: halfway to the previous / next token's ``h`` (down
    the column) and ``w`` (along the row); a value inside keeps the tile's order."""
    out = {}
    for k, c in cells.items():
        inf = torch.full_like(c, math.inf)
        lo, hi = -inf.clone(), inf.clone()
        mid_h, mid_w = (c[0, 1:] + c[0, :-1]) / 2, (c[1, :, 1:] + c[1, :, :-1]) / 2
        lo[0, 1:], hi[0, :-1] = mid_h, mid_h
        lo[1, :, 1:], hi[1, :, :-1] = mid_w, mid_w
        out[k] = (lo, hi)
    return out


def _tie_groups(layout: ViewLayout, grid: tuple[int, int]) -> list[dict[tuple[int, int], float]]:
    """Connected groups of corresponding tokens: ``{(view, flat index): w offset}``.

    Edges across the cut carry an offset of ``R`` in ``w``: there the first tile's token is
    the same direction as the last tile's, one ring further on.
    """
    ring = ring_columns(layout, grid[1])
    edges: dict[tuple[int, int], list[tuple[tuple[int, int], float]]] = {}
    for pp in patch_correspondences(layout, grid, mutual=True):
        shift = ring if _crosses_cut(layout, pp.i, pp.j) else 0.0  # w_j + shift ≡ w_i
        for a, b in zip(pp.idx_i.tolist(), pp.idx_j.tolist(), strict=True):
            edges.setdefault((pp.i, a), []).append(((pp.j, b), shift))
            edges.setdefault((pp.j, b), []).append(((pp.i, a), -shift))
    groups, seen = [], set()
    for start in edges:
        if start in seen:
            continue
        group, stack = {start: 0.0}, [start]  # node -> w offset into the group's frame
        while stack:
            node = stack.pop()
            for other, shift in edges[node]:
                if other not in group:
                    group[other] = group[node] + shift
                    stack.append(other)
        seen.update(group)
        groups.append(group)
    return groups


def _tie(layout: ViewLayout, grid: tuple[int, int], cells: dict[int, torch.Tensor]) -> None:
    """Give every group of corresponding tokens the mean of its ``(h, w)`` (in place), unless
    that mean would leave a member's window (:func:`_windows`; only happens near the poles)."""
    windows = _windows(cells)
    for group in _tie_groups(layout, grid):
        nodes = list(group)
        vals = torch.stack([cells[v].view(2, -1)[:, t] for v, t in nodes])  # (n, 2)
        offs = torch.tensor([[0.0, group[n]] for n in nodes], dtype=torch.float64)
        target = (vals + offs).mean(0) - offs  # (n, 2) each member's tied value
        lo = torch.stack([windows[v][0].view(2, -1)[:, t] for v, t in nodes])
        hi = torch.stack([windows[v][1].view(2, -1)[:, t] for v, t in nodes])
        if bool(((target > lo) & (target < hi)).all()):
            for (v, t), value in zip(nodes, target, strict=True):
                cells[v].view(2, -1)[:, t] = value


@lru_cache(maxsize=32)
def _tile_table(layout: ViewLayout, grid: tuple[int, int]) -> dict[int, torch.Tensor]:
    check_panorope_layout(layout)
    cells = _geo_cells(layout, grid)
    _tie(layout, grid, cells)
    for k, c in cells.items():  # the module's promise; a failure here is a bug, not bad input
        if (c[0].diff(dim=0) <= 0).any() or (c[1].diff(dim=1) <= 0).any():
            raise AssertionError(f"PanoRoPE positions of tile {k} are not monotone")
    return cells


def tile_positions(layout: ViewLayout, view: ViewMeta, grid: tuple[int, int]) -> torch.Tensor:
    """Tied geometric ``(h, w)`` ``(2, gh, gw)`` float64 of a tile's tokens (module docstring)."""
    return _tile_table(layout, tuple(grid))[view.index].clone()


def global_columns(layout: ViewLayout, view: ViewMeta, grid: tuple[int, int]) -> torch.Tensor:
    """Width positions ``w`` ``(gh, gw)`` of a tile's tokens (``tile_positions(...)[1]``)."""
    return tile_positions(layout, view, grid)[1]


def row_stride(layout: ViewLayout, grid: tuple[int, int]) -> int:
    """1-D row stride ``S = floor(max w) + 1``: one grid row of every tile fits in ``[0, S)``."""
    table = _tile_table(layout, tuple(grid))
    return math.floor(max(float(c[1].max()) for c in table.values())) + 1


def _ring_row_offset(layout: ViewLayout, view: ViewMeta, grid_h: int) -> int:
    """``ρ_k``: ``grid_h`` times the rank of the tile's ring by latitude (top ring first)."""
    pitch = {v.ring: v.pitch_deg for v in layout.tiles}
    order = sorted(pitch, key=lambda r: (-pitch[r], r if r is not None else -1))
    return grid_h * order.index(view.ring)


def block_positions(
    layout: ViewLayout,
    view: ViewMeta,
    grid: tuple[int, int],
    kind: RopeKind,
    *,
    quantize: bool = False,
) -> torch.Tensor:
    """Positions ``(3, gh, gw)`` float64 of one view's tokens, relative to its block origin.

    The LLM receives ``origin + block_positions``: rows ``(t, h, w)`` for ``mrope``; for ``1d``
    all three rows hold the 1-D position. Tiles share one origin (the first tile's), the global
    view has its own (see :func:`panorope_positions`).
    """
    gh, gw = grid
    rows = torch.arange(gh, dtype=torch.float64)[:, None].expand(gh, gw)
    if view.kind != "tile":
        cols = torch.arange(gw, dtype=torch.float64)[None].expand(gh, gw)
        if kind == "mrope":
            return torch.stack([torch.zeros_like(rows), rows, cols])
        return (rows * gw + cols).expand(3, gh, gw).clone()
    hw = tile_positions(layout, view, grid)
    if quantize:
        hw = hw.round()
    if kind == "mrope":
        return torch.cat([torch.zeros_like(rows)[None], hw])
    stride = row_stride(layout, grid) + (1 if quantize else 0)
    row = rows + _ring_row_offset(layout, view, gh)
    return (row * stride + hw[1]).expand(3, gh, gw).clone()


def position_grids(
    layout: ViewLayout, grid: tuple[int, int], kind: RopeKind, *, quantize: bool = False
) -> dict:
    """Per view, the position grid the LLM receives (relative to its origin), as plain JSON.

    ``mrope``: ``t``, ``h``, ``w`` lists ``(gh, gw)``; ``1d``: ``pos``. Every tile is relative
    to the one tile origin (the first position after the text before the first tile), the
    global view to its own (the first position after the text before it).
    """
    tiles = layout.tiles
    out: dict = {
        "kind": kind,
        "grid": list(grid),
        "strategy": layout.strategy,
        "origin": "tiles: shared origin o (first position after the text before the first "
        "tile); global view: its own origin; the LLM receives origin + these values",
        "views": [],
    }
    if tiles:
        out["ring_columns"] = ring_columns(layout, grid[1])
        if len(tiles) > 2:
            out["cut"] = {
                "between_views": [tiles[-1].index, tiles[0].index],
                "note": "the yaw ring is cut between the last tile and the first: their "
                "corresponding tokens share h, and w differs by exactly ring_columns",
            }
        if kind == "1d":
            out["row_stride"] = row_stride(layout, grid) + (1 if quantize else 0)
    for v in layout.views:
        rel = block_positions(layout, v, grid, kind, quantize=quantize)
        entry = {k: val for k, val in v.to_json().items() if k not in ("height", "width")}
        entry["origin"] = "tiles" if v.kind == "tile" else "own"
        names = ("t", "h", "w") if kind == "mrope" else ("pos",)
        for name, values in zip(names, rel, strict=False):
            entry[name] = values.round(decimals=6).tolist()
        out["views"].append(entry)
    return out


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
        if block is None:
            if bool(mask[t]):
                top = float(math.floor(top)) + 1.0  # text: the next integer position
                pos[:, t] = top
            t += 1
            continue
        origin = float(math.floor(top)) + 1.0
        if block.view.kind == "tile":
            ring_origin = origin if ring_origin is None else ring_origin
            origin = ring_origin
        rel = block_positions(
            layout, block.view, (block.grid_h, block.grid_w), kind, quantize=quantize
        )
        grid_pos = rel + origin  # (3, gh, gw)
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
    kind: RopeKind,
    quantize: bool = False,
) -> torch.Tensor:
    """PanoRoPE position ids: ``(3, B, L)`` for ``mrope``, ``(B, L)`` for ``1d``.

    Real-valued (float32) unless ``quantize`` (then rounded, long tensors; rounding can merge
    the positions of neighbouring tokens near tile edges, where cells are narrower).
    """
    out = []
    for ids, mask in zip(input_ids, attention_mask, strict=True):
        blocks = find_image_blocks(ids, image_token_id, grid, layout.views)
        out.append(_sample_positions(ids.cpu(), mask.cpu().bool(), blocks, layout, kind, quantize))
    pos = torch.stack(out, 1)  # (3, B, L)
    pos = pos.long() if quantize else pos.float()
    pos = pos.to(input_ids.device)
    return pos if kind == "mrope" else pos[0]
