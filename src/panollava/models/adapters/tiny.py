"""Tiny random-weight stand-ins of each family's real HF classes, for tests and CPU demos.

``build_tiny(family, words=...)`` returns ``(model, processor)``: the family's real model class
built from its real config class at toy sizes, its real image processor and processor classes,
and a locally built word-level tokenizer carrying the family's special tokens and a faithful
(simplified) copy of its chat template. Nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

__all__ = ["build_tiny", "build_word_tokenizer"]

_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}IMAGE{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_GEMMA = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<start_of_image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"

SPECIALS = {
    "qwen": [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ],
    "internvl": [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<img>",
        "</img>",
        "<IMG_CONTEXT>",
        "<video>",
    ],
    "gemma3": [
        "<pad>",
        "<bos>",
        "<eos>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<end_of_image>",
        "<image_soft_token>",
    ],
}
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
    """``(model, processor)`` of a tiny random-weight ``family`` model (see module docstring)."""
    torch.manual_seed(seed)
    words = _words(corpus)
    builders = {"qwen2_5_vl": _qwen, "qwen2_vl": _qwen, "internvl": _internvl, "gemma3": _gemma3}
    if family not in builders:
        raise ValueError(f"no tiny stand-in for {family!r}; have {sorted(builders)}")
    return builders[family](family, words, image_size)


def _text_config(vocab: int, **extra) -> dict:
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


def _qwen(family: str, words: list[str], image_size: int):
    tok = build_word_tokenizer(
        words,
        SPECIALS["qwen"],
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=_CHATML.replace("IMAGE", _QWEN_IMAGE),
    )
    ids = tok.get_vocab()
    v2 = family == "qwen2_vl"
    pixels = (image_size // 28 * 28) ** 2
    image_processor = transformers.Qwen2VLImageProcessor(
        min_pixels=pixels, max_pixels=pixels, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    vision = dict(depth=2, num_heads=2, patch_size=14, spatial_merge_size=2)
    if v2:
        vision |= dict(embed_dim=32, hidden_size=64, mlp_ratio=2)
        cls, cfg_cls, proc_cls = (
            transformers.Qwen2VLForConditionalGeneration,
            transformers.Qwen2VLConfig,
            transformers.Qwen2VLProcessor,
        )
    else:
        vision |= dict(
            hidden_size=32,
            intermediate_size=64,
            out_hidden_size=64,
            window_size=56,
            fullatt_block_indexes=[1],
        )
        cls, cfg_cls, proc_cls = (
            transformers.Qwen2_5_VLForConditionalGeneration,
            transformers.Qwen2_5_VLConfig,
            transformers.Qwen2_5_VLProcessor,
        )
    text = _text_config(len(tok), rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    cfg = cfg_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=None,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    processor = proc_cls(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=transformers.Qwen2VLVideoProcessor(),
        chat_template=tok.chat_template,
    )
    return cls(cfg).eval(), processor


def _internvl(family: str, words: list[str], image_size: int):
    image_tokens = (image_size // 14 // 2) ** 2  # patch 14, pixel shuffle 0.5
    named = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    tok = build_word_tokenizer(
        words,
        SPECIALS["internvl"],
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=_CHATML.replace("IMAGE", "<IMG_CONTEXT>"),
        named=named,
    )
    ids = tok.get_vocab()
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=[image_size, image_size],
        patch_size=[14, 14],
    )
    cfg = transformers.InternVLConfig(
        vision_config=vision,
        text_config=dict(model_type="qwen2", **_text_config(len(tok))),
        image_token_id=ids["<IMG_CONTEXT>"],
        image_seq_length=image_tokens,
        downsample_ratio=0.5,
    )
    image_processor = transformers.GotOcr2ImageProcessor(
        size={"height": image_size, "width": image_size}, crop_to_patches=False
    )
    processor = transformers.InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=transformers.InternVLVideoProcessor(),
        image_seq_length=image_tokens,
        chat_template=tok.chat_template,
    )
    return transformers.InternVLForConditionalGeneration(cfg).eval(), processor


def _gemma3(family: str, words: list[str], image_size: int):
    named = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    tok = build_word_tokenizer(
        words,
        SPECIALS["gemma3"],
        eos="<eos>",
        pad="<pad>",
        bos="<bos>",
        chat_template=_GEMMA,
        named=named,
    )
    ids = tok.get_vocab()
    tokens_per_image = 4
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=14,
    )
    text = _text_config(len(tok), sliding_window=64)
    cfg = transformers.Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=tokens_per_image,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )
    image_processor = transformers.Gemma3ImageProcessor(
        size={"height": image_size, "width": image_size}
    )
    processor = transformers.Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tok,
        chat_template=tok.chat_template,
        image_seq_length=tokens_per_image,
    )
    model = transformers.Gemma3ForConditionalGeneration(cfg).eval()
    # HF initialises the projector to zeros (real checkpoints overwrite it): a zero projector would
    # make every image token identical and cut the vision tower off every loss.
    with torch.no_grad():
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, 0.1)
    return model, processor
