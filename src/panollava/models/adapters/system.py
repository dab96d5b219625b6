"""PanoAdapt as a training ``System``: a family model + LoRA stages on the one engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from panollava.config import PanoConfig
from panollava.data.datasets import build_dataset, split_rows
from panollava.losses import build_overlap_loss, check_loss_reaches_trainable
from panollava.models.adapters.loading import load_adapter
from panollava.models.base import Stage
from panollava.models.export import export_hf
from panollava.models.lora import apply_lora, parameter_summary

__all__ = ["PanoAdaptSystem", "build_panoadapt_system"]

log = logging.getLogger(__name__)


class PanoAdaptSystem:
    """LoRA stages of an off-the-shelf VLM family (SYSTEM.md §5) for the engine."""

    def __init__(self, cfg: PanoConfig, loaded, run_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.loaded = loaded
        self.model = loaded.wrapper  # nn.Module with step()
        self.tokenizer = loaded.processor.tokenizer
        self.allow_fp16 = not loaded.facts.bf16_only
        self.run_dir = run_dir
        self._overlap: nn.Module | None = None
        self._lora = False

    def configure_stage(self, stage: Stage) -> None:
        wrapper = self.model
        if stage.lora is not None and not self._lora:
            wrapper.hf_model = apply_lora(
                wrapper.hf_model, stage.lora, self.loaded.facts.lora_groups
            )
            self._lora = True
        wrapper.requires_grad_(False)
        for name, p in wrapper.named_parameters():
            if "lora_" in name:
                p.requires_grad_(stage.lora is not None)
        rows = parameter_summary(wrapper, self.loaded.facts.lora_groups)
        trainable = sum(r["trainable"] for r in rows.values())
        total = sum(r["total"] for r in rows.values())
        log.info(
            "stage %s: %d / %d parameters trainable (%.2f%%)",
            stage.name,
            trainable,
            total,
            100 * trainable / max(total, 1),
        )

    def dataset(self, split: str, stage: Stage):

        return build_dataset(self.cfg, split, mode="train", run_dir=self.run_dir)

    def collate(self, stage: Stage):
        collate = self.loaded.collate(
            train=True,
            max_text_length=stage.max_text_length,
            view_labels=self.cfg.model.view_labels,
        )
        need_overlap = stage.overlap_weight > 0

        def collate_fn(samples):
            return {**collate(samples), "need_overlap": need_overlap}

        return collate_fn

    def eval_collate(self, max_text_length: int = 256):
        return self.loaded.collate(
            train=False, max_text_length=max_text_length, view_labels=self.cfg.model.view_labels
        )

    def generate(self, batch: dict[str, Any], *, max_new_tokens: int) -> torch.Tensor:
        return self.model.generate(
            batch, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id
        )

    def overlap_loss(self):
        if not any(s.overlap_weight > 0 for s in self.cfg.train.stages):
            return None
        if self._overlap is None:
            dim = self.model.hf_model.config.get_text_config().hidden_size
            self._overlap = build_overlap_loss(self.cfg.overlap_loss, in_dim=dim)
        return self._overlap

    def export(self, out_dir: Path, extra: dict[str, Any]) -> Path:
        """One HF folder of the family's class (LoRA merged) + processor + ``panorama.json``,
        written in the base checkpoint's published dtype (e.g. bfloat16), not the float32 the
        run was loaded and merged in."""
        return export_hf(
            self.model.hf_model,
            self.loaded.processor,
            out_dir,
            views=self.cfg.views,
            panorope=self.cfg.model.panorope,
            extra={**extra, "family": self.cfg.model.family},
            dtype=self.loaded.checkpoint_dtype,
        )

    def describe(self) -> dict[str, Any]:
        return {"system": "panoadapt", "family": self.cfg.model.family}

    def check_stage(self, stage: Stage, batch: dict[str, Any]) -> None:
        """Step 0: the overlap loss must reach a trainable parameter (else stop, naming the cause)."""
        if stage.overlap_weight <= 0:
            return
        # Without labels the step stops at the LLM's input: the vision side alone decides it.
        out = self.model.step(
            {k: v for k, v in batch.items() if k != "labels"} | {"need_overlap": True}
        )
        total, _ = self.overlap_loss()(out.features, out.pairs)
        reached = check_loss_reaches_trainable(self.model.hf_model, total)
        log.info("stage %s: overlap loss reaches %s", stage.name, reached)


def build_panoadapt_system(cfg: PanoConfig, run_dir: Path | None = None) -> PanoAdaptSystem:
    """Load the family model (pretrained or ``source: tiny``) for ``cfg.model``."""

    mcfg = cfg.model
    corpus = None
    checkpoint = mcfg.resolved_checkpoint()
    if mcfg.source == "tiny":
        checkpoint = "tiny"
        corpus = [f"{r.query} {r.reference}" for r in split_rows(cfg, "train")]
    elif mcfg.source == "arch":
        checkpoint = f"arch:{checkpoint}"
        corpus = [f"{r.query} {r.reference}" for r in split_rows(cfg, "train")]
    loaded = load_adapter(
        mcfg.family,
        cfg.views,
        checkpoint=checkpoint,
        tiny_corpus=corpus,
        panorope=mcfg.panorope,
        arch_layers=mcfg.arch_layers,
    )
    return PanoAdaptSystem(cfg, loaded, run_dir)
