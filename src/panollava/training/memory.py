"""Memory settings of a training run: gradient checkpointing and pure-bf16 weights.

``train.gradient_checkpointing`` switches HF activation checkpointing on in every Hugging Face
model inside the trained module (the VLM's LLM and vision tower, PanoLLaVA's vision encoder and
LLM). ``precision: bf16-pure`` stores frozen weights in bf16 while trainable parameters (LoRA,
resampler, heads) and therefore their AdamW state stay fp32; compute runs under bf16 autocast.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import PreTrainedModel

from panollava.training.schema import TrainConfig

__all__ = [
    "apply_memory_settings",
    "cast_frozen",
    "enable_gradient_checkpointing",
    "lightning_precision",
]

log = logging.getLogger(__name__)


def lightning_precision(precision: str) -> str:
    """The Lightning precision plugin of ``precision`` (``bf16-pure`` = bf16 autocast)."""
    return "bf16-mixed" if precision == "bf16-pure" else precision


def _outermost_hf_models(model: nn.Module) -> list[tuple[str, PreTrainedModel]]:
    found: list[tuple[str, PreTrainedModel]] = []
    for name, module in model.named_modules():
        if not isinstance(module, PreTrainedModel):
            continue
        if any(name.startswith(f"{outer}.") or outer == "" for outer, _ in found):
            continue
        found.append((name, module))
    return found


def enable_gradient_checkpointing(model: nn.Module) -> list[str]:
    """Activation checkpointing (non-reentrant) in every outermost HF model of ``model``.

    Returns their module names; raises when none supports it (the flag would do nothing).
    """
    enabled = []
    for name, hf in _outermost_hf_models(model):
        if not hf.supports_gradient_checkpointing:
            continue
        enable = getattr(hf, "activation_checkpointing_enable", None)
        if enable is not None:  # transformers >= 5.x
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if getattr(hf.config, "use_cache", None):
            hf.config.use_cache = False  # a KV cache is useless in training and conflicts
        enabled.append(name or type(hf).__name__)
    if not enabled:
        raise ValueError(
            "train.gradient_checkpointing: the model contains no Hugging Face model that "
            "supports gradient checkpointing; set it to false"
        )
    return enabled


def cast_frozen(model: nn.Module, dtype: torch.dtype) -> int:
    """Cast every frozen floating-point parameter to ``dtype`` (trainable ones stay); count cast."""
    n = 0
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
            n += p.numel()
    return n


def apply_memory_settings(model: nn.Module, train: TrainConfig, precision: str) -> list[str]:
    """Apply ``train``'s memory settings after a stage set what trains; returns what it did."""
    done = []
    if train.gradient_checkpointing:
        names = enable_gradient_checkpointing(model)
        done.append(f"gradient checkpointing in {', '.join(names)}")
    if precision == "bf16-pure":
        n = cast_frozen(model, torch.bfloat16)
        done.append(f"{n:,} frozen parameters stored in bf16")
    for line in done:
        log.info("memory: %s", line)
    return done
