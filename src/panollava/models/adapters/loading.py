"""Loading a PanoAdapt model: pretrained checkpoints (hub id or local folder) or tiny stand-ins."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from panollava.models.adapters.arch import arch_for_checkpoint, build_arch_model
from panollava.models.adapters.arch_processing import build_arch_processor
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import FamilyFacts, get_family, resolve_module
from panollava.models.adapters.tiny import build_tiny
from panollava.models.adapters.wrapper import PanoAdaptModel
from panollava.positional.panorope import check_panorope_layout, panorope_positions
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["LoadedAdapter", "ViewTokens", "load_adapter", "view_tokens"]


@dataclass(frozen=True)
class ViewTokens:
    """The image tokens the processor emits for one image.

    ``count``: tokens per image; ``grid``: ``(rows, cols)`` of the image's content tokens;
    ``raster_index``: ``(rows*cols,)`` position among the ``count`` tokens of each raster-grid
    token (None: the tokens are the grid in raster order; else e.g. InternVL crops, whose
    thumbnail tokens are left out of the grid).
    """

    count: int
    grid: tuple[int, int]
    raster_index: torch.Tensor | None = None


def _square(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{what}: {n} tokens per image is not a square grid")
    return side


def _crop_raster_index(rows: int, cols: int, side: int) -> torch.Tensor:
    """Raster order of a ``rows x cols`` crop grid of ``side x side`` token blocks (crop-major)."""
    r = torch.arange(rows * side)[:, None]  # (R, 1)
    c = torch.arange(cols * side)[None]  # (1, C)
    crop = (r // side) * cols + c // side
    return (crop * side * side + (r % side) * side + c % side).flatten()


def view_tokens(processor: Any, facts: FamilyFacts, height: int, width: int) -> ViewTokens:
    """Image tokens for a ``height x width`` image, from the processor's own resize rule."""
    ip = processor.image_processor
    if facts.image_tokens == "merged_patches":  # Qwen: smart resize to min/max pixels
        factor = ip.patch_size * ip.merge_size
        h, w = smart_resize(
            height,
            width,
            factor,
            min_pixels=ip.size["shortest_edge"],
            max_pixels=ip.size["longest_edge"],
        )
        grid = (h // factor, w // factor)
        return ViewTokens(grid[0] * grid[1], grid)
    per_image = int(processor.image_seq_length)
    side = _square(per_image, facts.name)
    if facts.image_tokens == "fixed":
        if getattr(ip, "do_pan_and_scan", False):
            raise ValueError(f"{facts.name}: pan-and-scan crops are not supported; turn it off")
        return ViewTokens(per_image, (side, side))
    # tiles (InternVL): crops of the tile size when crop_to_patches, + a thumbnail if > 1 crop
    patches = ip.get_number_of_image_patches(height, width)
    if patches == 1:
        return ViewTokens(per_image, (side, side))
    cols, rows = get_optimal_tiled_canvas(
        (height, width), (ip.size["height"], ip.size["width"]), ip.min_patches, ip.max_patches
    )
    index = _crop_raster_index(rows, cols, side)
    return ViewTokens(patches * per_image, (rows * side, cols * side), index)


@dataclass
class LoadedAdapter:
    """``checkpoint_dtype``: the dtype the checkpoint was published in (export writes it)."""

    wrapper: PanoAdaptModel
    processor: Any
    facts: FamilyFacts
    views: ViewsConfig
    checkpoint_dtype: torch.dtype = torch.float32

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

    def image_tokens(self, height: int, width: int) -> int:
        """Image tokens the processor emits for one ``height x width`` image (exact)."""
        return view_tokens(self.processor, self.facts, height, width).count


def _panorope(input_ids, attention_mask, layout, **kw):
    return panorope_positions(input_ids, attention_mask, layout, **kw)


def _load(facts: FamilyFacts, checkpoint: str | None, views, tiny_corpus, dtype, arch_layers=None):
    """``(model, processor, checkpoint dtype)``; tiny stand-ins are float32 checkpoints."""
    if checkpoint == "tiny":
        model, processor = build_tiny(facts.name, corpus=tiny_corpus, image_size=views.tile_size)
        return model, processor, torch.float32
    if checkpoint is not None and checkpoint.startswith("arch:"):  # real architecture, random
        row = arch_for_checkpoint(facts.name, checkpoint.removeprefix("arch:") or None)
        model = build_arch_model(row, layers=arch_layers, dtype=dtype or torch.float32)
        # every target's config.json publishes torch_dtype bfloat16
        return model, build_arch_processor(row, tiny_corpus), torch.bfloat16
    name = checkpoint or facts.default_checkpoint
    # The published dtype, from config.json (loading with ``dtype=`` overwrites model.config's).
    published = transformers.AutoConfig.from_pretrained(name).dtype
    if isinstance(published, str):
        published = getattr(torch, published)
    model_cls = getattr(transformers, facts.model_class)
    model = model_cls.from_pretrained(name, dtype=dtype or torch.float32).eval()
    processor = getattr(transformers, facts.processor_class).from_pretrained(name)
    return model, processor, published or torch.float32


def _check_image_token(facts: FamilyFacts, processor: Any, token_id: int) -> None:
    """The tokenizer's ``facts.image_token`` must be the id the model config expects."""
    tok_id = processor.tokenizer.convert_tokens_to_ids(facts.image_token)
    if tok_id != token_id:
        raise ValueError(
            f"{facts.name}: the tokenizer maps {facts.image_token!r} to {tok_id}, the model config "
            f"{facts.image_token_id_attr} is {token_id}: processor and model do not belong together"
        )


def load_adapter(
    family: str,
    views: ViewsConfig,
    *,
    checkpoint: str | None = None,
    tiny_corpus: list[str] | None = None,
    dtype: torch.dtype | None = None,
    panorope: bool = False,
    arch_layers: int | None = None,
) -> LoadedAdapter:
    """Model + processor + wrapper for ``family`` (``checkpoint=None`` and no corpus: family default;
    ``"tiny"``: toy stand-in; ``"arch:<hub id>"``: that checkpoint's architecture, random weights)."""
    facts = get_family(family)
    if views.strategy == "native" and panorope:
        raise ValueError("PanoRoPE needs tiles: the 'native' strategy feeds the ERP as one image")
    if panorope:  # before any weights load: tiles reaching a pole are refused, saying why
        check_panorope_layout(make_layout(views))
    facts.check_dtype(dtype)
    model, processor, published = _load(facts, checkpoint, views, tiny_corpus, dtype, arch_layers)
    token_id = facts.image_token_id(model)
    _check_image_token(facts, processor, token_id)
    tokens = view_tokens(processor, facts, views.tile_size, views.tile_size)
    position_fn = None
    if panorope:
        if tokens.raster_index is not None:
            raise ValueError(
                f"PanoRoPE needs one token grid per view: {family} cuts a {views.tile_size}-px view "
                f"into crops + a thumbnail ({tokens.count} tokens); use views.tile_size "
                f"{facts.native_size}"
            )
        position_fn = functools.partial(
            _panorope, image_token_id=token_id, grid=tokens.grid, kind=facts.rope_kind
        )
    wrapper = PanoAdaptModel(
        model,
        language_model=resolve_module(model, facts.language_model),
        image_token_id=token_id,
        layout=make_layout(views),
        token_grid=tokens.grid,
        tokens_per_view=tokens.count,
        raster_index=tokens.raster_index,
        position_fn=position_fn,
    )
    return LoadedAdapter(wrapper, processor, facts, views, published)
