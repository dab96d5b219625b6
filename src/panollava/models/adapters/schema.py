"""Config section ``model`` of PanoAdapt (pydantic only, no torch import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = ["FAMILY_CHECKPOINTS", "Family", "PanoAdaptConfig"]

Family = Literal["internvl", "qwen2_5_vl", "qwen2_vl", "gemma3"]

# Default checkpoint per family (HF-native classes in transformers >= 5).
FAMILY_CHECKPOINTS: dict[str, str] = {
    "internvl": "OpenGVLab/InternVL3_5-2B-HF",
    "qwen2_5_vl": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct",
    "gemma3": "google/gemma-3-4b-it",
}


class PanoAdaptConfig(StrictModel):
    """An off-the-shelf VLM adapted with LoRA (SYSTEM.md §5).

    The input mode is ``views.strategy``: ``resize``, ``native`` (the ERP through the model's own
    processor) or a multi-view strategy (``cubemap``, ``pinhole``, ``anyres_e2p``, ...).
    """

    system: Literal["panoadapt"] = "panoadapt"
    family: Family
    source: Literal["pretrained", "tiny", "arch"] = Field(
        "pretrained", description="arch: the checkpoint's real architecture, random weights"
    )
    arch_layers: int | None = Field(
        None,
        ge=1,
        description="source arch: blocks kept in the LLM and vision tower (cost scaling)",
    )
    checkpoint: str | None = Field(None, description="HF id or path; None = the family default")
    panorope: bool = Field(False, description="panorama-aware position ids (train + generate)")
    view_labels: bool = Field(False, description="name each view's direction in the prompt")
    tiny_vocab_from: str | None = Field(
        None, description="tiny source: text file(s) whose words make the tiny tokenizer's vocab"
    )

    @model_validator(mode="after")
    def _arch_layers_need_arch(self) -> PanoAdaptConfig:
        if self.arch_layers is not None and self.source != "arch":
            raise ValueError("model.arch_layers only applies to model.source: arch")
        return self

    def resolved_checkpoint(self) -> str:
        return self.checkpoint or FAMILY_CHECKPOINTS[self.family]
