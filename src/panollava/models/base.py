"""What every panorama model system gives the training engine, the predictor and export.

Two systems implement :class:`System`: PanoLLaVA (:mod:`panollava.models.panollava.system`)
and PanoAdapt (:mod:`panollava.models.adapters.system`). Callers use this contract and never
branch on ``cfg.model.system``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from panollava.data.sample import PanoSample
from panollava.models.schema import LoraSettings

__all__ = ["OverlapFn", "Stage", "StepOutput", "System"]

# (features (B, V, N, D), pairs per sample) -> (loss, logs)
OverlapFn = Callable[[torch.Tensor, list], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class StepOutput:
    """What a model returns for one batch.

    ``features``: tile features ``(B, V, N, D)`` for the overlap loss (None when not needed);
    ``pairs``: per sample, the ``PatchPairs`` of its adjacent tiles.
    """

    lm_loss: torch.Tensor | None
    features: torch.Tensor | None = None
    pairs: list | None = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Stage(Protocol):
    """The parts of a training stage a system reads (``training.schema.StageConfig`` is one)."""

    name: str
    trainable: list[str]
    lora: LoraSettings | None
    vision_trainable_blocks: int
    max_text_length: int
    overlap_weight: float


class System(Protocol):
    """A panorama model system: the model plus how to feed, train, generate with and export it."""

    model: nn.Module
    allow_fp16: bool

    @property
    def tokenizer(self) -> Any:
        """The text tokenizer (``batch_decode`` turns generated ids into answers)."""

    def configure_stage(self, stage: Stage) -> None:
        """Set which parameters train (freeze the rest, add LoRA adapters) for ``stage``."""

    def dataset(self, split: str, stage: Stage) -> Dataset:
        """Training/validation samples of ``split`` for ``stage``."""

    def collate(self, stage: Stage) -> Callable[[Sequence[PanoSample]], dict[str, Any]]:
        """Training collate for ``stage`` (text length limit, answer-only labels)."""

    def eval_collate(self) -> Callable[[Sequence[PanoSample]], dict[str, Any]]:
        """Generation collate: prompts only, padded for batched generation."""

    def generate(self, batch: dict[str, Any], *, max_new_tokens: int) -> torch.Tensor:
        """Greedy new token ids ``(B, T_new)`` for a batch from :meth:`eval_collate`."""

    def overlap_loss(self) -> OverlapFn | None:
        """The configured overlap loss (an ``nn.Module`` when it has trainable parts)."""

    def check_stage(self, stage: Stage, batch: dict[str, Any]) -> None:
        """Step-0 checks (e.g. the dead-loss check when an overlap loss is on), run by the engine
        on the placed model in the training dtype, on a batch of one sample."""

    def export(self, out_dir: Path, extra: dict[str, Any]) -> Path:
        """Write the trained model as standard folder(s) loadable without training code."""

    def describe(self) -> dict[str, Any]:
        """Facts for logs and ``infer``'s summary line (e.g. ``{"family": "qwen2_5_vl"}``)."""
