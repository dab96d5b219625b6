"""PanoLLaVA as a training ``System``: stages, data, collate, losses for the engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer

from panollava.config import PanoConfig, load_config, save_config
from panollava.data.collate import PanoCollate
from panollava.data.datasets import build_dataset, split_rows
from panollava.losses import build_overlap_loss, check_loss_reaches_trainable
from panollava.models.adapters.arch import get_arch
from panollava.models.adapters.arch_processing import arch_tokenizer
from panollava.models.base import Stage
from panollava.models.export import export_hf
from panollava.models.lora import apply_lora, parameter_summary
from panollava.models.panollava.builder import build_panollava
from panollava.models.panollava.model import PanoLLaVA

__all__ = [
    "HEADS_FILE",
    "LLM_LORA_GROUPS",
    "PanoLLaVASystem",
    "build_panollava_system",
    "load_panollava_export",
]

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
        self.run_dir: Path | None = None

    # ------------------------------------------------------------------ stages
    def configure_stage(self, stage: Stage) -> None:
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

    # -------------------------------------------------------------------- data
    def dataset(self, split: str, stage: Stage):

        run_dir = self.run_dir
        return build_dataset(self.cfg, split, mode="train", run_dir=run_dir)

    def collate(self, stage: Stage):

        collate = PanoCollate(
            self.tokenizer,
            num_image_tokens=self.model.num_image_tokens,
            max_text_length=stage.max_text_length,
            train=True,
            vision_token=self.cfg.model.vision_token,
        )
        need_overlap = stage.overlap_weight > 0

        def collate_fn(samples):
            batch = collate(samples)
            batch["need_overlap"] = need_overlap
            return batch

        return collate_fn

    def eval_collate(self, max_text_length: int = 128):

        return PanoCollate(
            self.tokenizer,
            num_image_tokens=self.model.num_image_tokens,
            max_text_length=max_text_length,
            train=False,
            vision_token=self.cfg.model.vision_token,
        )

    def generate(self, batch: dict[str, Any], *, max_new_tokens: int):
        """Greedy answers (new token ids) for an eval batch; stops at ``<|im_end|>``."""
        return self.model.generate(
            batch["pixel_values"],
            batch["input_ids"],
            batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.convert_tokens_to_ids("<|im_end|>"),
        )

    # ------------------------------------------------------------------ losses
    def overlap_loss(self):
        if not any(s.overlap_weight > 0 for s in self.cfg.train.stages):
            return None
        if self._overlap is None:
            dim = {
                "encoder": self.model.encoder.hidden_size,
                "resampler": self.model.projector.proj_in_dim,
                "projector": self.model.llm.get_input_embeddings().embedding_dim,
            }[self.model.feature_source]
            self._overlap = build_overlap_loss(self.cfg.overlap_loss, in_dim=dim)
        return self._overlap

    def export(self, out_dir: Path, extra: dict[str, Any]) -> Path:
        """PanoLLaVA is a custom architecture: its HF parts as standard folders — ``llm/``
        (Qwen3, LoRA merged, plus the tokenizer) and ``vision/`` (the SigLIP tower) — plus
        ``panollava_heads.safetensors`` (resampler + projector, which only panollava defines),
        ``config.yaml`` and ``panorama.json``."""
        model = self.model
        export_hf(model.llm, self.tokenizer, out_dir / "llm", views=self.cfg.views, extra=extra)
        model.encoder.backbone.save_pretrained(out_dir / "vision", safe_serialization=True)
        heads = {
            f"{part}.{k}": v.detach().contiguous().cpu()
            for part in ("resampler", "projector")
            for k, v in getattr(model, part).state_dict().items()
        }
        save_file(heads, str(out_dir / HEADS_FILE))
        save_config(self.cfg, out_dir / "config.yaml")
        (out_dir / "panorama.json").write_text((out_dir / "llm" / "panorama.json").read_text())
        return out_dir

    def describe(self) -> dict[str, Any]:
        return {"system": "panollava", "resampler": self.cfg.model.resampler.type}

    def check_stage(self, stage: Stage, batch: dict[str, Any]) -> None:
        """Step 0: an enabled overlap loss must reach a trainable parameter (dead-loss check)."""
        if stage.overlap_weight <= 0:
            return
        batch = {**batch, "need_overlap": True}
        out = self.model.step({k: v for k, v in batch.items() if k != "labels"})
        loss_fn = self.overlap_loss()
        total, _ = loss_fn(out.features, out.pairs)
        holder = nn.ModuleDict({"model": self.model, "overlap_head": loss_fn})
        reached = check_loss_reaches_trainable(holder, total)
        log.info("stage %s: overlap loss reaches %s", stage.name, reached)


HEADS_FILE = "panollava_heads.safetensors"


def load_panollava_export(export_dir: Path) -> PanoLLaVASystem:
    """The inverse of :meth:`PanoLLaVASystem.export`: the HF parts from ``llm/`` and
    ``vision/``, the resampler and projector from :data:`HEADS_FILE`, the views of its config."""
    cfg = load_config(export_dir / "config.yaml")
    model_cfg = cfg.model.model_copy(
        update={
            "source": "pretrained",
            "vision_name": str(export_dir / "vision"),
            "llm_name": str(export_dir / "llm"),
            "tokenizer": str(export_dir / "llm"),
        }
    )
    cfg = cfg.model_copy(update={"model": model_cfg})
    system = build_panollava_system(cfg)
    heads = load_file(str(export_dir / HEADS_FILE))
    for part in ("resampler", "projector"):
        state = {k[len(part) + 1 :]: v for k, v in heads.items() if k.startswith(f"{part}.")}
        getattr(system.model, part).load_state_dict(state, strict=True)
    system.model.eval()
    return system


def build_panollava_system(cfg: PanoConfig, run_dir: Path | None = None) -> PanoLLaVASystem:
    """Tokenizer + model for ``cfg.model`` (a :class:`PanoLLaVAConfig`)."""

    mcfg = cfg.model
    name = mcfg.tokenizer or (None if mcfg.source == "tiny" else mcfg.llm_name)
    if name is None:
        raise ValueError(
            "model.tokenizer must name a tokenizer folder for source: tiny "
            "(`panollava data synth` writes one next to the data)"
        )
    if mcfg.source == "arch" and mcfg.tokenizer is None:
        tokenizer = _arch_tokenizer(cfg)
    else:
        tokenizer = AutoTokenizer.from_pretrained(name)
    model = build_panollava(mcfg, cfg.views, tokenizer)
    system = PanoLLaVASystem(cfg, model, tokenizer)
    system.run_dir = run_dir
    return system


def _arch_tokenizer(cfg: PanoConfig):
    """Word-level stand-in of the LLM's tokenizer (published special ids) for ``source: arch``;
    the vision token takes id 151,669, the id the real Qwen3 tokenizer gives an added token."""
    corpus = [f"{r.query} {r.reference}" for r in split_rows(cfg, "train")]
    row = get_arch(cfg.model.llm_name)
    return arch_tokenizer(row, corpus, extra={cfg.model.vision_token: 151669})
