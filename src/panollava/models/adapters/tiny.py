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
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from panollava.models.adapters.families import get_family

__all__ = ["CHATML", "build_tiny", "build_word_tokenizer", "text_config"]

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
    """A word-level fast tokenizer (whitespace/punctuation split) with ``specials`` kept whole.

    With ``bos`` the tokenizer prepends it to every encoding (``add_special_tokens=True``), as
    Gemma3's does. ``named`` maps attribute names to special tokens (``{"image_token": "<image_soft_token>"}``)
    as real checkpoints do, so processors find them and they survive ``save_pretrained``.
    """
    vocab: dict[str, int] = {"<unk>": 0}
    for tok in [*specials, *BASE_WORDS, *words]:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos is not None:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        eos_token=eos,
        pad_token=pad,
        bos_token=bos,
        extra_special_tokens=named or {},
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [s for s in specials if s not in (eos, pad, bos)]},
        replace_extra_special_tokens=False,
    )
    tok.chat_template = chat_template
    return tok


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
    # The table names the adapter file (plugin lookup, as open_clip's arch table does).
    module = importlib.import_module(f"panollava.models.adapters.{facts.tiny_module}")
    return module.build_tiny(facts, _words(corpus), image_size)


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
