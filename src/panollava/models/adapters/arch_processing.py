"""Processors of the architecture-exact stand-ins, and the image-token count they produce.

:func:`build_arch_processor` builds a row's real processor classes with its published
image-processor settings and a locally built word-level tokenizer whose special tokens sit at
their published ids (nothing downloaded). :func:`tokens_per_image` computes, from the same
settings, how many image tokens that processor emits for an image (tested against it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from panollava.models.adapters.arch import ArchRow
from panollava.models.adapters.families import get_family
from panollava.models.adapters.tiny import BASE_WORDS, CHATML, family_module

__all__ = ["arch_tokenizer", "build_arch_processor", "tokens_per_image"]


def _words(corpus: Iterable[str] | None) -> list[str]:
    out: dict[str, None] = dict.fromkeys(BASE_WORDS)
    for line in corpus or []:
        for w in re.findall(r"\w+|[^\w\s]", line.lower()):
            out.setdefault(w, None)
    return list(out)


def arch_tokenizer(
    row: ArchRow, corpus: Iterable[str] | None = None, *, extra: dict[str, int] | None = None
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose special tokens have ``row``'s published ids.

    Words take the low ids (never a published special id); text token counts therefore differ
    from the real BPE tokenizer by a few tokens per sentence, image-token counts do not.
    """
    specials = {**row.specials, **(extra or {})}
    taken = set(specials.values())
    vocab: dict[str, int] = {"<unk>": 3 if 3 not in taken else max(taken) + 1}
    next_id = 4
    for w in _words(corpus):
        while next_id in taken or next_id == vocab["<unk>"]:
            next_id += 1
        vocab.setdefault(w, next_id)
        next_id += 1
    vocab.update(specials)
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    bos = row.roles.get("bos")
    if bos is not None:  # Gemma3's tokenizer prepends <bos> to every encoding
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, specials[bos])]
        )
    facts = get_family(row.family) if row.family else None
    named = family_module(facts).named_tokens(facts) if facts else {}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        eos_token=row.roles.get("eos"),
        pad_token=row.roles.get("pad"),
        bos_token=row.roles.get("bos"),
        extra_special_tokens=named,
    )
    others = [s for s in specials if s not in row.roles.values()]
    tok.add_special_tokens(
        {"additional_special_tokens": others}, replace_extra_special_tokens=False
    )
    tok.chat_template = (
        family_module(facts).chat_template(facts) if facts else CHATML.replace("IMAGE", "")
    )
    return tok


def build_arch_processor(row: ArchRow, corpus: Iterable[str] | None = None):
    """The real processor class of ``row``'s family with its published image-processor settings."""
    if row.family is None:
        raise ValueError(f"{row.key} is a {row.kind} part: it has no VLM processor")
    tok = arch_tokenizer(row, corpus)
    facts = get_family(row.family)
    per_image = row.config.get("image_seq_length", row.config.get("mm_tokens_per_image"))
    return family_module(facts).make_processor(facts, tok, dict(row.image_processor), per_image)


def _qwen_grid(row: ArchRow, height: int, width: int) -> tuple[int, int]:
    """Qwen2-VL's resize rule: sides rounded to patch*merge, area clamped to [min, max] pixels."""
    ip = row.image_processor
    unit = ip["patch_size"] * ip["merge_size"]
    h = max(unit, round(height / unit) * unit)
    w = max(unit, round(width / unit) * unit)
    if h * w > ip["max_pixels"]:
        beta = math.sqrt(height * width / ip["max_pixels"])
        h = max(unit, math.floor(height / beta / unit) * unit)
        w = max(unit, math.floor(width / beta / unit) * unit)
    elif h * w < ip["min_pixels"]:
        beta = math.sqrt(ip["min_pixels"] / (height * width))
        h = math.ceil(height * beta / unit) * unit
        w = math.ceil(width * beta / unit) * unit
    return h // unit, w // unit


def _internvl_crops(row: ArchRow, height: int, width: int) -> int:
    """InternVL's dynamic tiling: the closest-aspect grid of 448-px crops (+ a thumbnail if > 1)."""
    ip = row.image_processor
    tile = ip["size"]["height"]
    lo, hi = ip["min_patches"], ip["max_patches"]
    grids = sorted(
        {
            (i, j)
            for n in range(lo, hi + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if lo <= i * j <= hi
        },
        key=lambda g: g[0] * g[1],
    )
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and height * width > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    crops = best[0] * best[1]
    return crops + 1 if crops > 1 else crops


def tokens_per_image(row: ArchRow, height: int, width: int | None = None) -> int:
    """Image tokens the family's processor emits for one ``height x width`` image (published
    settings; InternVL with the processor's default ``crop_to_patches=True``)."""
    width = height if width is None else width
    if row.family is None:
        raise ValueError(f"{row.key} is a {row.kind} part: no image processor")
    rule = get_family(row.family).image_tokens  # the family table's image-token rule
    if rule == "merged_patches":  # Qwen: smart resize, 14-px patches merged 2x2
        gh, gw = _qwen_grid(row, height, width)
        return gh * gw
    if rule == "tiles":  # InternVL: 448-px crops (+ thumbnail), each image_seq_length tokens
        return _internvl_crops(row, height, width) * row.config["image_seq_length"]
    return row.config["mm_tokens_per_image"]  # fixed (Gemma3: 896-px resize, no pan-and-scan)
