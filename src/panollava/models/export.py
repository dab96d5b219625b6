"""Export: merge LoRA adapters into the base weights and save a standard HF folder.

The folder loads with ``AutoModelForImageTextToText.from_pretrained`` / the family's class and
``AutoProcessor.from_pretrained`` — no panollava needed — and carries ``panorama.json``, the view
layout and options (strategy, PanoRoPE) that produce the model's inputs from a panorama.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import PeftModel
from torch import nn

from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["ADAPTER_DIR", "export_hf", "merge_lora"]

ADAPTER_DIR = "adapter"


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
    model's) and processor to ``out_dir``.

    A PEFT model also leaves its adapters, unmerged, in ``out_dir/adapter`` (``adapter_config.json``
    + safetensors) for ``PeftModel.from_pretrained(base_model, out_dir / "adapter")``.
    """
    out_dir = Path(out_dir)
    if isinstance(model, PeftModel):
        model.save_pretrained(out_dir / ADAPTER_DIR, safe_serialization=True)
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
