"""Tiny random-weight stand-ins of each family's real HF classes, for tests and CPU demos.

``build_tiny(family, corpus=...)`` returns ``(model, processor)``: the family's real model class
built from its real config class at toy sizes, its real image processor and processor classes,
and a locally built word-level tokenizer carrying the family's special tokens and a faithful
(simplified) copy of its chat template. Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable

import torch
from transformers import PreTrainedTokenizerFast

from panollava.data.tokenizer import word_level_tokenizer
from panollava.models.adapters.families import FamilyFacts, get_family

__all__ = ["CHATML", "build_tiny", "build_word_tokenizer", "family_module", "text_config"]

# ChatML (Qwen, InternVL); ``IMAGE`` is replaced by the family's image placeholder text.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}IMAGE{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BASE_WORDS = [
    "user",
    "assistant",
    "model",
    "system",
    "the",
    "a",
    "is",
    "of",
    "and",
    "in",
    "what",
    "there",
    "view",
    "yaw",
    "pitch",
    "panorama",
    "overview",
    ":",
    ",",
    ".",
    "°",
]


def build_word_tokenizer(
    words: Iterable[str],
    specials: list[str],
    *,
    eos: str,
    pad: str,
    bos: str | None = None,
    chat_template: str,
    named: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """A family's tiny tokenizer: its ``specials``, the prompt words and ``words``
    (:func:`panollava.data.tokenizer.word_level_tokenizer`)."""
    return word_level_tokenizer(
        [*specials, *BASE_WORDS, *words],
        unk="<unk>",
        eos=eos,
        pad=pad,
        specials=specials,
        bos=bos,
        named=named,
        chat_template=chat_template,
    )


def _words(corpus: Iterable[str] | None) -> list[str]:
    out: dict[str, None] = {}
    for line in corpus or []:
        for w in re.findall(r"\w+|[^\w\s]", line.lower()):
            out.setdefault(w, None)
    return list(out)


def build_tiny(
    family: str, *, corpus: Iterable[str] | None = None, image_size: int = 56, seed: int = 0
):
    """``(model, processor)`` of a tiny random-weight ``family`` model (see module docstring).

    The builder is ``build_tiny(facts, words, image_size)`` of the family's adapter file
    ``adapters/<tiny_module>.py`` named in the family table.
    """
    facts = get_family(family)
    torch.manual_seed(seed)
    return family_module(facts).build_tiny(facts, _words(corpus), image_size)


def family_module(facts: FamilyFacts):
    """The family's adapter file ``adapters/<tiny_module>.py``, named in the family table
    (plugin lookup, as open_clip's arch table does): ``build_tiny``, ``make_processor``,
    ``named_tokens``, ``chat_template``."""
    return importlib.import_module(f"panollava.models.adapters.{facts.tiny_module}")


def text_config(vocab: int, **extra) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=8192,
        **extra,
    )
