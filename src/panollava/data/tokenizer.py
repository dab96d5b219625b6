"""A word-level tokenizer for tiny models trained on synthetic captions.

HF ``tokenizers`` WordLevel model: lower-cased input split on whitespace and punctuation
(``\\w+|[^\\w\\s]+``), wrapped as :class:`transformers.PreTrainedTokenizerFast` with the special
tokens ``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>`` (eos and pad), ``<unk>`` and the
vision placeholder ``<|vision|>``, and a system-free ChatML chat template. Decoding joins words
with spaces and glues punctuation back (``"a red disc, a star."``).

    tok = build_word_tokenizer(captions)
    save_word_tokenizer(tok, out / "tokenizer")   # AutoTokenizer.from_pretrained(out / "tokenizer")
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from panollava.data.collate import CHATML_TEMPLATE, VISION_TOKEN

__all__ = [
    "SPECIAL_TOKENS",
    "build_word_tokenizer",
    "save_word_tokenizer",
    "words_of",
]

UNK, EOS, IM_START, IM_END = "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (UNK, EOS, IM_START, IM_END, VISION_TOKEN)
ROLE_WORDS = ("user", "assistant", "system")
_WORD = re.compile(r"\w+|[^\w\s]+")


def words_of(text: str) -> list[str]:
    """The words the tokenizer sees in ``text`` (lower-cased, punctuation runs split off)."""
    return _WORD.findall(text.lower())


def build_word_tokenizer(
    texts: Iterable[str], *, min_freq: int = 1, extra_words: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is the words of ``texts`` seen ``>= min_freq``
    times (most frequent first, ties alphabetical: deterministic), plus roles and specials.

    Ids: specials 0..4 (``<unk>`` = 0), then role words, ``extra_words``, corpus words.
    """
    counts = Counter(w for t in texts for w in words_of(t))
    corpus = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    vocab: dict[str, int] = {}
    for tok in [*SPECIAL_TOKENS, *ROLE_WORDS, *extra_words, *corpus]:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # " ," -> "," on decode
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=UNK,
        eos_token=EOS,
        pad_token=EOS,
        extra_special_tokens={"vision_token": VISION_TOKEN},
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [IM_START, IM_END, VISION_TOKEN]},
        replace_extra_special_tokens=False,
    )
    tok.chat_template = CHATML_TEMPLATE
    tok.model_max_length = 4096
    return tok


def save_word_tokenizer(tok: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Save to a folder loadable with ``AutoTokenizer.from_pretrained(path)``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(path)
    return path
