"""Loading a PanoAdapt model: pretrained checkpoints (hub id or local folder) or tiny stand-ins."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
import transformers

from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import FamilyFacts, get_family, resolve_module
from panollava.models.adapters.tiny import build_tiny
from panollava.models.adapters.wrapper import PanoAdaptModel
from panollava.positional import panorope_positions
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["LoadedAdapter", "load_adapter", "token_grid_for"]


@dataclass
class LoadedAdapter:
    wrapper: PanoAdaptModel
    processor: Any
    facts: FamilyFacts
    views: ViewsConfig

    def collate(self, *, train: bool, max_text_length: int = 256, view_labels: bool = False):
        return AdapterCollate(
            self.processor,
            image_token_id=self.wrapper.image_token_id,
            end_of_turn=self.facts.end_of_turn,
            max_text_length=max_text_length,
            train=train,
            views=self.wrapper.layout.views,
            view_labels=view_labels,
        )


def _panorope(input_ids, attention_mask, layout, **kw):
    return panorope_positions(input_ids, attention_mask, layout, **kw)


def token_grid_for(processor, model, facts: FamilyFacts, views: ViewsConfig) -> tuple[int, int]:
    """Tokens per view ``(rows, cols)``, measured by running the processor on one blank view."""
    size = views.tile_size
    blank = [torch.zeros(size, size, 3, dtype=torch.uint8).numpy()]
    out = processor.image_processor(images=blank, return_tensors="pt")
    if "image_grid_thw" in out:  # Qwen: patches of 14, merged 2x2
        _, h, w = out["image_grid_thw"][0].tolist()
        merge = getattr(processor.image_processor, "merge_size", 2)
        return (h // merge, w // merge)
    per_image = getattr(processor, "image_seq_length", None) or model.config.image_seq_length
    side = math.isqrt(per_image)
    if side * side != per_image:
        raise ValueError(f"{facts.name}: {per_image} tokens per image is not a square grid")
    return (side, side)


def load_adapter(
    family: str,
    views: ViewsConfig,
    *,
    checkpoint: str | None = None,
    tiny_corpus: list[str] | None = None,
    dtype: torch.dtype | None = None,
    panorope: bool = False,
) -> LoadedAdapter:
    """Model + processor + wrapper for ``family`` (``checkpoint=None`` and no corpus: family default)."""
    facts = get_family(family)
    native = views.strategy == "native"
    if native and panorope:
        raise ValueError("PanoRoPE needs tiles: the 'native' strategy feeds the ERP as one image")
    if checkpoint == "tiny":
        model, processor = build_tiny(family, corpus=tiny_corpus, image_size=views.tile_size)
    else:
        name = checkpoint or facts.default_checkpoint
        cls = getattr(transformers, facts.model_class)
        model = cls.from_pretrained(name, dtype=dtype or torch.float32).eval()
        processor = transformers.AutoProcessor.from_pretrained(name)
    grid = token_grid_for(processor, model, facts, views)
    token_id = facts.image_token_id(model)
    position_fn = None
    if panorope:
        position_fn = functools.partial(
            _panorope, image_token_id=token_id, grid=grid, kind=facts.rope_kind
        )
    wrapper = PanoAdaptModel(
        model,
        language_model=resolve_module(model, facts.language_model),
        image_token_id=token_id,
        layout=make_layout(views),
        token_grid=grid,
        position_fn=position_fn,
    )
    return LoadedAdapter(wrapper, processor, facts, views)
