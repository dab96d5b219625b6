"""The dead-loss check: does a loss's gradient reach any trainable parameter?

A loss whose gradient reaches nothing trains nothing while looking healthy in the logs. The classic
case (SYSTEM.md §4): LoRA targets ``q_proj/k_proj/v_proj`` put no adapter into Qwen2-VL /
Qwen2.5-VL's vision tower, whose attention is one fused ``attn.qkv`` (+ ``attn.proj``), so an
overlap loss on vision features is dead. The hint is derived from the model's module names.
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["DeadLossError", "check_loss_reaches_trainable", "likely_cause"]


class DeadLossError(RuntimeError):
    """The loss's gradient reaches no trainable parameter."""


def likely_cause(model: nn.Module) -> str:
    """A hint for a dead loss, read off the module tree."""
    names = [n for n, _ in model.named_modules()]
    has_lora = any(n.endswith("lora_A") for n in names)
    fused = [n for n in names if re.search(r"(^|\.)(attn\.)?qkv$", n)]
    fused_without_lora = [n for n in fused if f"{n}.lora_A" not in names]
    if not any(p.requires_grad for p in model.parameters()):
        return "the model has no trainable parameters at all (check the stage's trainable parts)"
    if fused_without_lora:
        where = fused_without_lora[0]
        return (
            f"the vision tower fuses q/k/v into one projection (e.g. '{where}') that has no LoRA "
            f"adapter{' although LoRA adapters exist elsewhere' if has_lora else ''}: LoRA targets "
            "q_proj/k_proj/v_proj match nothing there — add attn.qkv and attn.proj (Qwen2-VL / "
            "Qwen2.5-VL) to the vision LoRA targets"
        )
    return (
        "the loss's inputs do not depend on any trainable module (check where features come from)"
    )


def check_loss_reaches_trainable(model: nn.Module, loss: torch.Tensor) -> dict[str, int]:
    """Parameter counts per top-level module that receive a non-zero gradient from ``loss``.

    Raises :class:`DeadLossError` (with :func:`likely_cause`) when none does. Does not modify
    ``.grad`` of any parameter, and frees ``loss``'s graph (the check must not hold a step's
    activations while training starts).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not loss.requires_grad or not named:
        raise DeadLossError(
            f"the loss's gradient reaches no trainable parameter: {likely_cause(model)}"
        )
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    reached: dict[str, int] = {}
    for (name, p), g in zip(named, grads, strict=True):
        if g is not None and bool(g.abs().sum() > 0):
            group = name.split(".")[0]
            reached[group] = reached.get(group, 0) + p.numel()
    if not reached:
        raise DeadLossError(
            f"the loss's gradient reaches no trainable parameter: {likely_cause(model)}"
        )
    return reached
