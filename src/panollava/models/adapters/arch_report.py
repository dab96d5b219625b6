"""What ``panollava arch`` reports: sizes, LoRA coverage and token counts of a stand-in on meta."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from panollava.models.adapters.arch import ArchRow, build_arch_model
from panollava.models.adapters.arch_processing import build_arch_processor, tokens_per_image
from panollava.models.adapters.families import FamilyFacts, get_family
from panollava.views import make_layout

__all__ = ["arch_report", "lora_matches", "prompt_tokens"]

_DEFAULT_TARGETS = ["language", "vision"]
_NATIVE_ERP = (1024, 2048)  # (height, width) of the ERP counted for the 'native' strategy


def _tower(name: str, facts: FamilyFacts) -> str:
    if name.startswith(facts.language_model + "."):
        return "llm"
    if name.startswith(facts.vision_tower + "."):
        return "vision"
    return "other"


def lora_matches(
    model: nn.Module, targets: Sequence[str], groups: Mapping[str, str], r: int, facts: FamilyFacts
) -> list[dict[str, Any]]:
    """Per LoRA target (group name or regex): Linear modules matched per tower and LoRA params.

    LoRA adds ``r * (in + out)`` parameters per matched ``nn.Linear`` (A and B, no bias).
    """
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    expanded = [(g, groups[g]) for g in groups] if "all" in targets else []
    expanded += [(t, groups.get(t, t)) for t in targets if t != "all"]
    rows = []
    for target, pattern in expanded:
        hit = [(n, m) for n, m in linears if re.fullmatch(pattern, n)]
        towers = {"llm": 0, "vision": 0, "other": 0}
        for n, _ in hit:
            towers[_tower(n, facts)] += 1
        params = sum(r * (m.in_features + m.out_features) for _, m in hit)
        rows.append({"target": target, "pattern": pattern, "modules": towers, "params": params})
    return rows


def prompt_tokens(processor, n_images: int, height: int, width: int, query: str) -> int:
    """Length of the tokenized chat prompt with ``n_images`` images and ``query``."""
    content = [{"type": "image"}] * n_images + [{"type": "text", "text": query}]
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    images = [np.zeros((height, width, 3), np.uint8)] * n_images
    bos = processor.tokenizer.bos_token
    rendered_bos = bos is not None and text.startswith(bos)  # Gemma3: no second <bos>
    out = processor(
        text=[text], images=[images], return_tensors="pt", add_special_tokens=not rendered_bos
    )
    return int(out["input_ids"].shape[1])


def _view_geometry(cfg) -> tuple[str, int, int, int]:
    """(strategy, views, height, width) of a recipe (None: 9 views of 448 px)."""
    if cfg is None:
        return "anyres_e2p", 9, 448, 448
    views = cfg.views
    if views.strategy == "native":
        return "native", 1, *_NATIVE_ERP
    n = len(make_layout(views)) if views.strategy != "resize" else 1
    return views.strategy, n, views.tile_size, views.tile_size


def _lora_stages(cfg) -> list[tuple[str, int, list[str]]]:
    if cfg is None:
        return [("default", 32, list(_DEFAULT_TARGETS))]
    return [(s.name, s.lora.r, list(s.lora.targets)) for s in cfg.train.stages if s.lora]


def arch_report(row: ArchRow, cfg=None, *, query: str = "What is in this panorama?") -> dict:
    """The report of ``row`` (with the recipe ``cfg``'s LoRA stages and views, if given)."""
    model = build_arch_model(row, device="meta")
    total = sum(p.numel() for p in model.parameters())
    report: dict[str, Any] = {
        "target": row.key,
        "checkpoint": row.checkpoint,
        "published_params": row.published_params,
        "published_source": row.published_source,
        "total_params": total,
    }
    if row.kind != "vlm":
        return report
    facts = get_family(row.family)
    strategy, n_views, height, width = _view_geometry(cfg)
    stages = []
    for name, r, targets in _lora_stages(cfg):
        matches = lora_matches(model, targets, facts.lora_groups, r, facts)
        trainable = sum(m["params"] for m in matches)
        for m in matches:
            m["percent"] = 100 * m["params"] / (total + trainable)
        stages.append(
            {
                "stage": name,
                "r": r,
                "targets": matches,
                "trainable_params": trainable,
                "trainable_percent": 100 * trainable / (total + trainable),
            }
        )
    processor = build_arch_processor(row)
    report.update(
        image_token_id=facts.image_token_id(model),
        strategy=strategy,
        view_size=[height, width],
        views=n_views,
        tokens_per_view=tokens_per_image(row, height, width),
        prompt_tokens=prompt_tokens(processor, n_views, height, width, query),
        prompt_query=query,
        lora=stages,
    )
    return report
