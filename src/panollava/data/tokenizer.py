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

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from panollava.data.collate import CHATML_TEMPLATE, VISION_TOKEN

__all__ = [
    "SPECIAL_TOKENS",
    "build_word_tokenizer",
    "save_word_tokenizer",
    "word_level_tokenizer",
    "words_of",
]

UNK, EOS, IM_START, IM_END = "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (UNK, EOS, IM_START, IM_END, VISION_TOKEN)
ROLE_WORDS = ("user", "assistant", "system")
_WORD = re.compile(r"\w+|[^\w\s]+")


def words_of(text: str) -> list[str]:
    """The words the tokenizer sees in ``text`` (lower-cased, punctuation runs split off)."""
    return _WORD.findall(text.lower())


def word_level_tokenizer(
    vocab_tokens: Iterable[str],
    *,
    unk: str,
    eos: str,
    pad: str,
    specials: Iterable[str] = (),
    bos: str | None = None,
    named: dict[str, str] | None = None,
    chat_template: str | None = None,
    lowercase: bool = False,
    glue_punctuation: bool = False,
) -> PreTrainedTokenizerFast:
    """The one word-level fast tokenizer builder (this PanoLLaVA tokenizer and every tiny
    PanoAdapt family's): ids in the order of ``vocab_tokens`` (``unk`` first), whitespace and
    punctuation pre-split, ``specials`` kept whole.

    ``bos``: prepended to every encoding (``add_special_tokens=True``), as Gemma3's tokenizer
    does; ``named``: attribute names of special tokens (``{"image_token": "<image_soft_token>"}``)
    as real checkpoints carry them, so processors find them and they survive ``save_pretrained``;
    ``glue_punctuation``: decode ``"disc , a"`` as ``"disc, a"``.
    """
    vocab: dict[str, int] = {unk: 0}
    for tok in vocab_tokens:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    if lowercase:
        core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    if glue_punctuation:
        core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    if bos is not None:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=unk,
        eos_token=eos,
        pad_token=pad,
        bos_token=bos,
        extra_special_tokens=named or {},
    )
    extra = [s for s in specials if s not in (unk, eos, pad, bos)]
    tok.add_special_tokens({"additional_special_tokens": extra}, replace_extra_special_tokens=False)
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def build_word_tokenizer(
    texts: Iterable[str], *, min_freq: int = 1, extra_words: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """The tiny PanoLLaVA tokenizer: the words of ``texts`` seen ``>= min_freq`` times (most
    frequent first, ties alphabetical: deterministic), plus roles and ChatML specials.

    Ids: specials 0..4 (``<unk>`` = 0), then role words, ``extra_words``, corpus words.
    """
    counts = Counter(w for t in texts for w in words_of(t))
    corpus = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    tok = word_level_tokenizer(
        [*SPECIAL_TOKENS, *ROLE_WORDS, *extra_words, *corpus],
        unk=UNK,
        eos=EOS,
        pad=EOS,
        specials=[IM_START, IM_END, VISION_TOKEN],
        named={"vision_token": VISION_TOKEN},
        chat_template=CHATML_TEMPLATE,
        lowercase=True,
        glue_punctuation=True,
    )
    tok.model_max_length = 4096
    return tok


def save_word_tokenizer(tok: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Save to a folder loadable with ``AutoTokenizer.from_pretrained(path)``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(path)
    return path
