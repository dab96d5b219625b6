"""Config section ``model`` of the custom PanoLLaVA VLM (pydantic only, no torch import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from panollava.models.panollava.resamplers.schema import (
    ResamplerConfig,
    check_resampler_compatibility,
)
from panollava.strict import StrictModel

__all__ = ["PanoLLaVAConfig", "ProjectorConfig", "TinySizes"]


class TinySizes(StrictModel):
    """Sizes of the random-weight stand-ins used by tests and the CPU demo."""

    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    patch_size: int = 16
    llm_hidden: int = 128
    llm_layers: int = 2
    llm_heads: int = 4
    llm_kv_heads: int = 2


class ProjectorConfig(StrictModel):
    """Panorama projector: multi-view PE + projection to the LLM width + view stitching."""

    pe: bool = Field(True, description="add the 360°-periodic multi-view positional encoding")
    pe_shortest_period: float = Field(
        3.0, ge=2, description="finest PE band's period in patch angles (2 = Nyquist)"
    )
    pe_dropout: float = Field(0.0, ge=0, lt=1)
    hidden_dim: int | None = Field(
        None, ge=1, description="None: one Linear; else Linear-GELU-Linear"
    )
    stitching: Literal["concat", "stride_views"] = "concat"


class PanoLLaVAConfig(StrictModel):
    """The custom VLM (SYSTEM.md §6). ``source: tiny`` builds random-weight stand-ins offline."""

    system: Literal["panollava"] = "panollava"
    source: Literal["pretrained", "tiny", "arch"] = Field(
        "pretrained", description="arch: the named checkpoints' real architectures, random weights"
    )
    arch_layers: int | None = Field(
        None, ge=1, description="source arch: blocks kept in the LLM and vision encoder"
    )
    vision_name: str = Field(
        "google/siglip2-so400m-patch16-256",
        description="HF id or path of the vision encoder (SigLIP/SigLIP2, CLIP, DINOv2)",
    )
    llm_name: str = Field("Qwen/Qwen3-0.6B", description="HF id or path of the causal LLM")
    tokenizer: str | None = Field(
        None, description="HF id or folder of the tokenizer; None = the LLM's (tiny: required)"
    )
    tiny: TinySizes = Field(default_factory=TinySizes)
    resampler: ResamplerConfig = Field(default_factory=lambda: ResamplerConfig(type="bimamba"))
    projector: ProjectorConfig = Field(default_factory=ProjectorConfig)
    overlap_features: Literal["encoder", "resampler", "projector"] = Field(
        "resampler", description="which tile features the overlap loss compares"
    )
    vision_token: str = Field("<|vision|>", description="placeholder token in the chat template")

    @model_validator(mode="after")
    def _compatible(self) -> PanoLLaVAConfig:
        if self.arch_layers is not None and self.source != "arch":
            raise ValueError("model.arch_layers only applies to model.source: arch")
        if self.projector.stitching == "stride_views":
            check_resampler_compatibility(
                self.resampler, needs_grid=True, reason="model.projector.stitching='stride_views'"
            )
        if self.projector.pe:
            check_resampler_compatibility(
                self.resampler,
                needs_grid=True,
                reason="model.projector.pe=true (per-token directions)",
            )
        return self
