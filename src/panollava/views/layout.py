"""View layouts: which cameras each crop strategy of SYSTEM.md §2 places on the sphere.

A :class:`ViewLayout` depends only on the config (never on pixels), so it is computed once,
cached, and shared by every later stage (PE, PanoRoPE, overlap losses, stitching, figures).
Views are ordered global first (if any), then tiles ring by ring, each ring by increasing yaw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from panollava.geometry import ViewGeometry
from panollava.views.schema import RING_STRATEGIES, ViewsConfig

__all__ = ["ViewKind", "ViewLayout", "ViewMeta", "make_layout", "ring_yaws"]

ViewKind = Literal["global", "tile"]


@dataclass(frozen=True)
class ViewMeta:
    """One view: its camera and pixel size. Angles in degrees (py360convert conventions)."""

    index: int
    kind: ViewKind
    geometry: ViewGeometry
    height: int
    width: int
    ring: int | None = None  # which pitch ring a tile belongs to
    name: str = ""  # e.g. "F" for a cube face

    @property
    def yaw_deg(self) -> float:
        return self.geometry.yaw_deg

    @property
    def pitch_deg(self) -> float:
        return self.geometry.pitch_deg

    @property
    def roll_deg(self) -> float:
        return self.geometry.roll_deg

    @property
    def hfov_deg(self) -> float:
        return self.geometry.hfov_deg

    @property
    def vfov_deg(self) -> float:
        return self.geometry.vfov_deg

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (self.height, self.width)

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "kind": self.kind,
            "name": self.name,
            "projection": self.geometry.projection,
            "yaw_deg": self.yaw_deg,
            "pitch_deg": self.pitch_deg,
            "roll_deg": self.roll_deg,
            "hfov_deg": self.hfov_deg,
            "vfov_deg": self.vfov_deg,
            "height": self.height,
            "width": self.width,
            "ring": self.ring,
        }


@dataclass(frozen=True)
class ViewLayout:
    """All views of a strategy plus the adjacency of the tile rings.

    ``pairs`` holds index pairs ``(i, j)`` of yaw-adjacent tiles (``j`` to the right of ``i``),
    including the wrap pair (last tile, first tile) of each closed ring. ``ring_overlap`` is the
    *physical* overlap fraction of adjacent tiles, ``1 - stride / fov`` — the same number every
    downstream consumer (losses, PanoRoPE, stitching) must use.
    """

    strategy: str
    views: tuple[ViewMeta, ...]
    pairs: tuple[tuple[int, int], ...] = ()
    ring_overlap: float = 0.0
    ring_stride_deg: float = 0.0
    native: bool = False  # the single view is the ERP at its own resolution

    def __len__(self) -> int:
        return len(self.views)

    @property
    def tiles(self) -> tuple[ViewMeta, ...]:
        return tuple(v for v in self.views if v.kind == "tile")

    @property
    def global_index(self) -> int | None:
        return next((v.index for v in self.views if v.kind == "global"), None)

    @property
    def geometries(self) -> tuple[ViewGeometry, ...]:
        return tuple(v.geometry for v in self.views)

    def to_json(self) -> dict:
        return {
            "strategy": self.strategy,
            "ring_overlap": self.ring_overlap,
            "ring_stride_deg": self.ring_stride_deg,
            "pairs": [list(p) for p in self.pairs],
            "views": [v.to_json() for v in self.views],
        }


def ring_yaws(n: int, offset_deg: float = 0.0) -> list[float]:
    """Yaws (degrees, wrapped to ``[-180, 180)``) of ``n`` tiles evenly spaced on a closed ring."""
    stride = 360.0 / n
    return [((offset_deg + k * stride + 180.0) % 360.0) - 180.0 for k in range(n)]


def _global_view(cfg: ViewsConfig, index: int = 0) -> ViewMeta:
    """The whole panorama in one square image (``stretch``) or letterboxed (``letterbox``)."""
    # letterbox: 360° of latitude over the square, so the rows past either pole are black.
    vfov = {"stretch": 180.0, "letterbox": 360.0}[cfg.global_mode]
    geom = ViewGeometry("equirect", 0.0, 0.0, 360.0, vfov)
    return ViewMeta(index, "global", geom, cfg.tile_size, cfg.tile_size, name="global")


def _ring_tiles(cfg: ViewsConfig, start: int, projection: str, vfov: float) -> list[ViewMeta]:
    n = cfg.ring_tile_count()
    views: list[ViewMeta] = []
    for ring, pitch in enumerate(cfg.pitch_deg):
        # Tiles are listed by increasing yaw, starting at yaw_offset (0 = the ERP centre).
        for yaw in ring_yaws(n, cfg.yaw_offset_deg):
            pitch_here = pitch if projection == "gnomonic" else 0.0
            geom = ViewGeometry(projection, yaw, pitch_here, cfg.fov_deg, vfov)
            views.append(
                ViewMeta(start + len(views), "tile", geom, cfg.tile_size, cfg.tile_size, ring)
            )
    return views


def _ring_pairs(views: list[ViewMeta]) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    rings: dict[int, list[int]] = {}
    for v in views:
        if v.kind == "tile" and v.ring is not None:
            rings.setdefault(v.ring, []).append(v.index)
    for members in rings.values():
        n = len(members)
        if n < 2:
            continue
        pairs += [(members[k], members[k + 1]) for k in range(n - 1)]
        if n > 2:
            pairs.append((members[-1], members[0]))  # the wrap pair closes the ring
    return pairs


_CUBE = {  # name: (yaw, pitch), faces in py360convert's F R B L U D order
    "F": (0.0, 0.0),
    "R": (90.0, 0.0),
    "B": (180.0, 0.0),
    "L": (-90.0, 0.0),
    "U": (0.0, 90.0),
    "D": (0.0, -90.0),
}


def _with_global(cfg: ViewsConfig, default: bool) -> bool:
    return default if cfg.global_view is None else cfg.global_view


def make_layout(cfg: ViewsConfig) -> ViewLayout:
    """The :class:`ViewLayout` of ``cfg.strategy`` (cached per config)."""
    return _make_layout(cfg.model_dump_json())


@lru_cache(maxsize=128)
def _make_layout(cfg_json: str) -> ViewLayout:
    cfg = ViewsConfig.model_validate_json(cfg_json)
    s = cfg.strategy
    views: list[ViewMeta] = []
    stride = overlap = 0.0
    if s in ("resize", "native"):
        views = [_global_view(cfg)]
        return ViewLayout(s, tuple(views), native=s == "native")
    if s == "pinhole" and cfg.global_view:
        raise ValueError("strategy 'pinhole' has no global view; use 'e2p' with global_view: true")
    defaults = {
        "e2p": False,
        "pinhole": False,
        "sliding_window": False,
        "anyres": True,
        "anyres_e2p": True,
        "cubemap": cfg.cube_faces == 4,
    }
    if _with_global(cfg, defaults[s]):
        views.append(_global_view(cfg))
    if s in ("e2p", "pinhole", "anyres_e2p"):
        vfov = cfg.vfov_deg or cfg.fov_deg
        views += _ring_tiles(cfg, len(views), "gnomonic", vfov)
    elif s == "sliding_window":
        views += _ring_tiles(cfg, len(views), "equirect", cfg.vfov_deg or 180.0)
    elif s == "cubemap":
        for name in list(_CUBE)[: cfg.cube_faces]:
            yaw, pitch = _CUBE[name]
            geom = ViewGeometry("gnomonic", yaw, pitch, 90.0, 90.0)
            ring = 0 if pitch == 0 else None
            size = cfg.tile_size
            views.append(ViewMeta(len(views), "tile", geom, size, size, ring, name))
        stride, overlap = 90.0, 0.0
    elif s == "anyres":
        rows, cols = cfg.anyres_grid
        for r in range(rows):
            lat_c = 90.0 - (r + 0.5) * 180.0 / rows
            for yaw in ring_yaws(cols, -180.0 + 180.0 / cols):
                geom = ViewGeometry("equirect", yaw, lat_c, 360.0 / cols, 180.0 / rows)
                size = cfg.tile_size
                views.append(ViewMeta(len(views), "tile", geom, size, size, r))
        stride, overlap = 360.0 / cols, 0.0
    else:  # pragma: no cover - guarded by the config's Literal
        raise ValueError(f"unknown strategy {s!r}")
    if s in RING_STRATEGIES:
        stride, overlap = 360.0 / cfg.ring_tile_count(), cfg.ring_overlap()
    return ViewLayout(s, tuple(views), tuple(_ring_pairs(views)), overlap, stride)
