"""Config section ``views`` (pure pydantic, no torch): how a panorama becomes views."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = ["MAX_VIEWS", "RING_STRATEGIES", "GlobalMode", "Strategy", "ViewsConfig"]

# Every view is a full image for the vision encoder: the published recipes use at most ~20
# (a 30 deg FoV ring plus a global view); 64 leaves room and keeps a misconfiguration
# (overlap 0.999 -> 4,000 tiles) from running for minutes at gigabytes before failing.
MAX_VIEWS = 64


Strategy = Literal[
    "resize", "native", "sliding_window", "e2p", "pinhole", "cubemap", "anyres", "anyres_e2p"
]
GlobalMode = Literal["stretch", "letterbox"]
# Strategies whose tiles form closed yaw rings of fov_deg tiles that may overlap their neighbours.
RING_STRATEGIES = ("e2p", "pinhole", "anyres_e2p", "sliding_window")


class ViewsConfig(StrictModel):
    """How a panorama becomes views (SYSTEM.md §2). Angles in degrees."""

    strategy: Strategy = "anyres_e2p"
    fov_deg: float = Field(90.0, gt=0, lt=180, description="horizontal FoV of each tile")
    vfov_deg: float | None = Field(
        None, gt=0, lt=180, description="vertical FoV; None = same as fov_deg (square pixels)"
    )
    overlap: float = Field(
        0.5, ge=0, lt=1, description="target fraction of a tile shared with its yaw neighbour"
    )
    num_tiles: int | None = Field(
        None, ge=1, description="explicit tiles per ring; None = ceil(360 / (fov * (1 - overlap)))"
    )
    pitch_deg: list[float] = Field(default_factory=lambda: [0.0], description="one ring per pitch")
    yaw_offset_deg: float = Field(0.0, description="yaw of the first tile")
    tile_size: int = Field(256, ge=8, description="tile height = width in pixels")
    global_view: bool | None = Field(
        None, description="add a whole-panorama view first; None = the strategy's default"
    )
    global_mode: GlobalMode = Field(
        "stretch",
        description="stretch: ERP resized to a square (all tokens see content); letterbox: padded "
        "2:1 image in a square (half the tokens black)",
    )
    cube_faces: Literal[4, 6] = 4
    anyres_grid: tuple[
        Annotated[int, Field(ge=1)],
        Annotated[int, Field(ge=1)],
    ] = Field((2, 4), description="rows x cols of ERP grid tiles (each >= 1)")
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    @model_validator(mode="after")
    def _check_pitch(self) -> ViewsConfig:
        for p in self.pitch_deg:
            if not -90.0 <= p <= 90.0:
                raise ValueError(f"pitch_deg entries must lie in [-90, 90], got {p}")
        return self

    @model_validator(mode="after")
    def _bounded_views(self) -> ViewsConfig:
        if self.strategy in ("e2p", "pinhole", "anyres_e2p", "sliding_window"):
            n = self.ring_tile_count() * len(self.pitch_deg)
            how = (
                f"{self.ring_tile_count()} tiles per ring (fov_deg {self.fov_deg:g}, overlap "
                f"{self.overlap:g}, num_tiles {self.num_tiles}) x {len(self.pitch_deg)} pitch rings"
            )
        elif self.strategy == "anyres":
            n, how = self.anyres_grid[0] * self.anyres_grid[1], f"anyres_grid {self.anyres_grid}"
        else:
            return self
        if n > MAX_VIEWS:
            raise ValueError(
                f"{how} = {n} views; at most {MAX_VIEWS} views per panorama (each is a full "
                "image for the vision encoder): lower the overlap or num_tiles, or widen fov_deg"
            )
        return self

    def ring_overlap(self) -> float:
        """The physical overlap fraction of adjacent tiles, ``1 - stride / fov`` (0 when the
        strategy's views do not overlap: resize, native, cubemap, anyres)."""
        if self.strategy not in RING_STRATEGIES:
            return 0.0
        return max(0.0, 1.0 - 360.0 / self.ring_tile_count() / self.fov_deg)

    def ring_tile_count(self) -> int:
        """Tiles on one closed yaw ring: explicit ``num_tiles`` or ``ceil(360 / (fov (1-overlap)))``."""
        if self.num_tiles is not None:
            return self.num_tiles
        return max(1, math.ceil(360.0 / (self.fov_deg * (1.0 - self.overlap)) - 1e-9))
