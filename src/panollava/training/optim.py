"""Optimiser and learning-rate schedule: AdamW over named parameter groups with lr multipliers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

__all__ = ["build_optimizer", "lr_lambda", "param_groups"]


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    lr_multipliers: dict[str, float] | None = None,
) -> list[dict]:
    """Trainable parameters grouped by the first matching name prefix of ``lr_multipliers``.

    Biases and norm weights (1-D tensors) get no weight decay. Groups carry a ``name`` for logs.
    """
    lr_multipliers = lr_multipliers or {}
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((k for k in lr_multipliers if name.startswith(k)), "")
        decay = p.ndim >= 2
        key = (prefix, decay)
        if key not in groups:
            groups[key] = {
                "name": f"{prefix or 'default'}{'' if decay else '/no_decay'}",
                "params": [],
                "lr": lr * lr_multipliers.get(prefix, 1.0),
                "weight_decay": weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(p)
    if not groups:
        raise ValueError("no trainable parameters: check the stage's trainable modules")
    return list(groups.values())


def build_optimizer(
    groups: Iterable[dict], *, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
) -> torch.optim.Optimizer:
    """AdamW over prepared groups (see :func:`param_groups`)."""
    return torch.optim.AdamW(list(groups), betas=betas, eps=eps)


def lr_lambda(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int,
    kind: Literal["cosine", "linear", "constant"] = "cosine",
    min_ratio: float = 0.0,
) -> float:
    """Multiplier of the base lr at optimiser step ``step``: linear warmup then decay."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant" or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    decay = 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * decay
