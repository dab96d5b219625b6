"""LoRA through PEFT: target resolution from named groups and a per-group parameter summary."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from peft import LoraConfig, get_peft_model
from torch import nn

from panollava.models.schema import LoraSettings

__all__ = ["apply_lora", "parameter_summary", "resolve_targets"]


def resolve_targets(targets: Sequence[str], groups: Mapping[str, str]) -> str:
    """One PEFT ``target_modules`` regex from group names (``groups[name]`` is a regex) or
    explicit module-name patterns (anything that is not a group name is used as a regex)."""
    parts = []
    for t in targets:
        if t == "all":
            parts.extend(groups.values())
        elif t in groups:
            parts.append(groups[t])
        else:
            parts.append(t)
    if not parts:
        raise ValueError("LoRA needs at least one target group or module pattern")
    return "|".join(f"(?:{p})" for p in parts)


def apply_lora(model: nn.Module, settings: LoraSettings, groups: Mapping[str, str]) -> nn.Module:
    """Wrap ``model`` with LoRA adapters on the resolved targets; refuses targets matching nothing."""
    pattern = resolve_targets(settings.targets, groups)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    matched = [n for n in names if re.fullmatch(pattern, n)]
    if not matched:
        raise ValueError(
            f"LoRA targets {settings.targets} (regex {pattern!r}) match no Linear module; "
            f"examples of Linear names: {names[:5]}"
        )
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=pattern,
        bias="none",
    )
    return get_peft_model(model, config)


def parameter_summary(model: nn.Module, groups: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """``{group: {"trainable": n, "total": n}}`` with groups keyed by the first module-path part."""
    out: dict[str, dict[str, int]] = {}
    for name, p in model.named_parameters():
        key = next((g for g, rx in groups.items() if re.search(rx, name)), name.split(".")[0])
        row = out.setdefault(key, {"trainable": 0, "total": 0})
        row["total"] += p.numel()
        if p.requires_grad:
            row["trainable"] += p.numel()
    return out
