"""Export: merge LoRA adapters into the base weights and save a standard HF folder.

The folder loads with ``AutoModelForImageTextToText.from_pretrained`` / the family's class and
``AutoProcessor.from_pretrained`` — no panollava needed — and carries ``panorama.json``, the view
layout and options (strategy, PanoRoPE) that produce the model's inputs from a panorama.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from panollava.config import ViewsConfig
from panollava.views import make_layout

__all__ = ["export_hf", "merge_lora"]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold LoRA adapters into the wrapped weights (PEFT ``merge_and_unload``); no-op without LoRA."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    for name, child in list(model.named_children()):
        merged = merge_lora(child)
        if merged is not child:
            setattr(model, name, merged)
    return model


def export_hf(
    model: nn.Module,
    processor,
    out_dir: str | Path,
    *,
    views: ViewsConfig,
    panorope: bool = False,
    extra: dict | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Merge LoRA, then ``save_pretrained`` model (safetensors, in ``dtype``: None keeps the
    model's) and processor to ``out_dir``."""
    out_dir = Path(out_dir)
    merged = merge_lora(model)
    if dtype is not None:
        merged = merged.to(dtype)
    merged.save_pretrained(out_dir, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(out_dir)
    layout = make_layout(views)
    panorama = {
        "format": "panollava-panorama/1",
        "views": views.model_dump(mode="json"),
        "layout": layout.to_json(),
        "panorope": panorope,
        "conventions": "degrees; positive yaw looks right, positive pitch looks up (py360convert)",
        **(extra or {}),
    }
    (out_dir / "panorama.json").write_text(json.dumps(panorama, indent=2))
    return out_dir


def export_run(run_dir: str | Path, out_dir: str | Path, *, dtype: str = "auto") -> Path:
    """Export a trained run folder (every finished stage applied, LoRA merged in float32).

    ``dtype``: what the weights are written in — ``auto``: PanoAdapt the base checkpoint's
    published dtype (bfloat16 for the released families), PanoLLaVA float32; or
    ``float32``/``bfloat16``/``float16`` (float16 refused for bf16-only families).

    * PanoAdapt: one HF folder of the family's class + processor + ``panorama.json``.
    * PanoLLaVA (a custom architecture): its HF parts as standard folders — ``llm/`` (Qwen3 with
      LoRA merged, plus the tokenizer) and ``vision/`` (the SigLIP tower) — plus
      ``panollava_heads.safetensors`` (resampler + projector, which only panollava defines),
      ``config.yaml`` and ``panorama.json``.
    """
    from safetensors.torch import save_file

    from panollava.config import save_config
    from panollava.inference import Predictor, resolve_dtype

    predictor = Predictor.from_run(run_dir, dtype="float32")
    cfg, system = predictor.cfg, predictor.system
    target = None if dtype == "auto" else resolve_dtype(dtype, predictor.device)
    out_dir = Path(out_dir)
    extra = {"source_run": str(Path(run_dir).resolve()), "experiment": cfg.experiment}
    if cfg.model.system == "panoadapt":
        system.loaded.facts.check_dtype(target)
        return export_hf(
            system.model.hf_model,
            system.loaded.processor,
            out_dir,
            views=cfg.views,
            panorope=cfg.model.panorope,
            extra={**extra, "family": cfg.model.family},
            dtype=target or system.loaded.checkpoint_dtype,
        )
    model = system.model
    export_hf(
        model.llm, system.tokenizer, out_dir / "llm", views=cfg.views, extra=extra, dtype=target
    )
    if target is not None:
        model.encoder.backbone.to(target)
    model.encoder.backbone.save_pretrained(out_dir / "vision", safe_serialization=True)
    heads = {
        f"{part}.{k}": v.detach().to(dtype=target or v.dtype).contiguous().cpu()
        for part in ("resampler", "projector")
        for k, v in getattr(model, part).state_dict().items()
    }
    save_file(heads, str(out_dir / "panollava_heads.safetensors"))
    save_config(cfg, out_dir / "config.yaml")
    (out_dir / "panorama.json").write_text((out_dir / "llm" / "panorama.json").read_text())
    return out_dir
