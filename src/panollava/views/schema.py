"""Config section ``views`` (pure pydantic, no torch): how a panorama becomes views."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = ["GlobalMode", "Strategy", "ViewsConfig"]


Strategy = Literal[
    "resize", "native", "sliding_window", "e2p", "pinhole", "cubemap", "anyres", "anyres_e2p"
]
GlobalMode = Literal["stretch", "letterbox", "fold"]


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
        "2:1 image in a square (half the tokens black); fold: left and right halves stacked",
    )
    cube_faces: Literal[4, 6] = 4
    anyres_grid: tuple[int, int] = Field((2, 4), description="rows x cols of ERP grid tiles")
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    @model_validator(mode="after")
    def _check_pitch(self) -> ViewsConfig:
        for p in self.pitch_deg:
            if not -90.0 <= p <= 90.0:
                raise ValueError(f"pitch_deg entries must lie in [-90, 90], got {p}")
        return self

    def ring_tile_count(self) -> int:
        """Tiles on one closed yaw ring: explicit ``num_tiles`` or ``ceil(360 / (fov (1-overlap)))``."""
        if self.num_tiles is not None:
            return self.num_tiles
        return max(1, math.ceil(360.0 / (self.fov_deg * (1.0 - self.overlap)) - 1e-9))
