"""Config sections of the training engine: stages, precision, strategy, loggers.

Pure pydantic (no torch import), mounted into the root schema by :mod:`panollava.config`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from panollava.models.schema import LoraSettings
from panollava.strict import StrictModel

__all__ = ["StageConfig", "TrainConfig"]


class StageConfig(StrictModel):
    """One training stage. Unset values fall back to ``train`` defaults."""

    name: str
    trainable: list[str] = Field(
        default_factory=list,
        description="modules trained in this stage, e.g. [resampler, projector]",
    )
    epochs: int | None = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="optimiser steps; overrides epochs")
    lr: float = Field(1e-4, gt=0, allow_inf_nan=False)
    batch_size: int = Field(1, ge=1)
    accumulate: int = Field(1, ge=1, description="gradient accumulation (micro-batches per step)")
    max_text_length: int = Field(128, ge=8, description="text tokens, image tokens not counted")
    train_split: str = Field("train", description="data split (defined once in `data`)")
    valid_split: str | None = "valid"
    vision_trainable_blocks: int = Field(0, ge=-1, description="0 frozen, -1 all, N the last N")
    lm_weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    overlap_weight: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="weight of the overlap loss (0 = off)"
    )
    lora: LoraSettings | None = None
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    lr_multipliers: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_loss(self) -> StageConfig:
        if self.lm_weight == 0 and self.overlap_weight == 0:
            raise ValueError(f"stage {self.name!r} has no loss: set lm_weight or overlap_weight")
        return self


class TrainConfig(StrictModel):
    """Engine settings shared by all stages."""

    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int | Literal["auto"] = "auto"
    strategy: Literal[
        "auto", "ddp", "ddp_spawn", "fsdp", "deepspeed_stage_2", "deepspeed_stage_3"
    ] = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "bf16-pure"] = (
        Field(
            "auto",
            description="auto: bf16-mixed on GPU, 32-true on CPU; bf16-pure: frozen weights in "
            "bf16, trainable parameters and optimiser state fp32, bf16 autocast",
        )
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations of the LLM and vision tower in the backward"
    )
    grad_clip: float | None = Field(1.0, gt=0, allow_inf_nan=False)
    num_workers: int = Field(0, ge=0)
    log_every_n_steps: int = Field(10, ge=1)
    progress_every_s: float = Field(
        30.0, ge=0, description="outside a terminal: seconds between progress lines"
    )
    checkpoint_every_n_steps: int = Field(50, ge=1)
    val_check_interval: float | int | None = None
    loggers: list[Literal["csv", "tensorboard", "wandb"]] = Field(default_factory=lambda: ["csv"])
    deterministic: bool = True
    stages: list[StageConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_stage_names(self) -> TrainConfig:
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stage names must be unique, repeated: {dupes}")
        return self
