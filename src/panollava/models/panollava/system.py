"""PanoLLaVA as a training ``System``: stages, data, collate, losses for the engine."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from panollava.config import PanoConfig
from panollava.models.lora import apply_lora, parameter_summary
from panollava.models.panollava.model import PanoLLaVA
from panollava.training.schema import StageConfig

__all__ = ["LLM_LORA_GROUPS", "PanoLLaVASystem"]

log = logging.getLogger(__name__)

# LoRA target groups of the LLM (Qwen3-style names); regexes over module names inside `llm`.
LLM_LORA_GROUPS = {
    "language": r".*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
}
TRAINABLE_PARTS = ("resampler", "projector", "llm", "overlap_head")


class PanoLLaVASystem:
    """Builds the model from the config and sets each stage's trainable parameters."""

    allow_fp16 = True

    def __init__(self, cfg: PanoConfig, model: PanoLLaVA, tokenizer: Any) -> None:
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self._overlap: nn.Module | None = None
        self._lora_applied = False

    # ------------------------------------------------------------------ stages
    def configure_stage(self, stage: StageConfig) -> None:
        unknown = sorted(set(stage.trainable) - set(TRAINABLE_PARTS))
        if unknown:
            raise ValueError(
                f"stage {stage.name!r}: unknown trainable parts {unknown}; valid: {TRAINABLE_PARTS} "
                "(the vision encoder is set by vision_trainable_blocks)"
            )
        m = self.model
        if stage.lora is not None and not self._lora_applied:
            m.llm = apply_lora(m.llm, stage.lora, LLM_LORA_GROUPS)
            self._lora_applied = True
        m.requires_grad_(False)
        m.encoder.set_trainable_blocks(stage.vision_trainable_blocks)
        for part in ("resampler", "projector", "llm"):
            if part in stage.trainable:
                getattr(m, part).requires_grad_(True)
        if self._lora_applied:
            for name, p in m.llm.named_parameters():
                if "lora_" in name:
                    p.requires_grad_(stage.lora is not None or "llm" in stage.trainable)
        summary = parameter_summary(m, {})
        trainable = sum(r["trainable"] for r in summary.values())
        total = sum(r["total"] for r in summary.values())
        log.info(
            "stage %s: %d / %d parameters trainable (%.2f%%) %s",
            stage.name,
            trainable,
            total,
            100 * trainable / max(total, 1),
            {k: v["trainable"] for k, v in summary.items() if v["trainable"]},
        )
