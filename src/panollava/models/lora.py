"""LoRA through PEFT: target resolution from named groups and a per-group parameter summary."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from peft import LoraConfig, get_peft_model
from torch import nn

from panollava.models.schema import LoraSettings

__all__ = ["apply_lora", "parameter_summary", "resolve_targets"]


def resolve_targets(targets: Sequence[str], groups: Mapping[str, str]) -> dict[str, str]:
    """``{target: regex}`` from group names (``groups[name]`` is a regex), ``all`` (every group)
    or explicit module-name patterns (anything that is not a group name is used as a regex)."""
    out: dict[str, str] = {}
    for t in targets:
        if t == "all":
            out.update(groups)
        else:
            out[t] = groups.get(t, t)
    if not out:
        raise ValueError("LoRA needs at least one target group or module pattern")
    return out


def apply_lora(model: nn.Module, settings: LoraSettings, groups: Mapping[str, str]) -> nn.Module:
    """Wrap ``model`` with LoRA adapters on the resolved targets.

    Every target must match at least one Linear module: a pattern matching nothing is refused
    (naming it), even when other targets match.
    """
    resolved = resolve_targets(settings.targets, groups)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    dead = [t for t, rx in resolved.items() if not any(re.fullmatch(rx, n) for n in names)]
    if dead:
        shown = ", ".join(
            f"{t!r}" + (f" (regex {resolved[t]!r})" if t in groups else "") for t in dead
        )
        raise ValueError(
            f"LoRA target(s) {shown} match no Linear module of {type(model).__name__}; "
            f"groups: {sorted(groups)}; examples of Linear names: {names[:5]}"
        )
    pattern = "|".join(f"(?:{rx})" for rx in resolved.values())
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
