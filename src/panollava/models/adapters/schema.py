"""Config section ``model`` of PanoAdapt (pydantic + the torch-free family table)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from panollava.models.adapters.families import FAMILIES, FAMILY_NAMES
from panollava.strict import StrictModel

__all__ = ["Family", "PanoAdaptConfig"]

# The family names of the one table (a Literal so configs and CLI options list the choices).
Family = Literal[FAMILY_NAMES]  # type: ignore[valid-type]


class PanoAdaptConfig(StrictModel):
    """An off-the-shelf VLM adapted with LoRA (SYSTEM.md §5).

    The input mode is ``views.strategy``: ``resize``, ``native`` (the ERP through the model's own
    processor) or a multi-view strategy (``cubemap``, ``pinhole``, ``anyres_e2p``, ...).
    """

    system: Literal["panoadapt"] = "panoadapt"
    family: Family
    source: Literal["pretrained", "tiny"] = "pretrained"
    checkpoint: str | None = Field(None, description="HF id or path; None = the family default")
    panorope: bool = Field(False, description="panorama-aware position ids (train + generate)")
    view_labels: bool = Field(False, description="name each view's direction in the prompt")

    def check_dtype(self, dtype: object) -> None:
        """Raise ``PrecisionError`` for fp16 (a precision or dtype name) on a bf16-only family."""
        FAMILIES[self.family].check_dtype(dtype)

    def resolved_checkpoint(self) -> str:
        return self.checkpoint or FAMILIES[self.family].default_checkpoint
