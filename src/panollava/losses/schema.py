"""Config section ``overlap_loss`` (pydantic only, no torch import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from panollava.strict import StrictModel

__all__ = ["OverlapLossConfig"]


class OverlapLossConfig(StrictModel):
    """Overlap-consistency loss between adjacent tiles (SYSTEM.md §4).

    The weight of the loss in the total is a per-stage setting (``overlap_weight``).
    """

    type: Literal["vicreg_pairwise", "vicreg_batchwise", "densecl", "dense_vicreg"] = (
        "vicreg_pairwise"
    )
    inv_weight: float = Field(25.0, ge=0, description="VICReg invariance (MSE) weight")
    var_weight: float = Field(25.0, ge=0, description="VICReg variance hinge weight")
    cov_weight: float = Field(1.0, ge=0, description="VICReg covariance weight")
    temperature: float = Field(0.07, gt=0, description="DenseCL InfoNCE temperature")
    min_pairs: int = Field(4, ge=1, description="skip (and count) tile pairs with fewer matches")
    head: bool = Field(False, description="Linear-LN-GELU-Linear projection head before the loss")
    head_dim: int | None = Field(None, ge=1, description="head width; None = input width")
