"""Qwen2-VL / Qwen2.5-VL adapter: the tiny random-weight stand-in of the real HF classes."""

from __future__ import annotations

import transformers

from panollava.models.adapters.families import FamilyFacts
from panollava.models.adapters.tiny import CHATML, build_word_tokenizer, text_config

__all__ = ["build_tiny", "chat_template", "make_processor", "named_tokens"]

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def named_tokens(facts: FamilyFacts) -> dict[str, str]:
    """Special tokens the real tokenizer names as attributes (none for Qwen)."""
    return {}


def chat_template(facts: FamilyFacts) -> str:
    return CHATML.replace("IMAGE", f"<|vision_start|>{facts.image_token}<|vision_end|>")


def make_processor(facts: FamilyFacts, tok, image_settings: dict, image_seq_length: int | None):
    """The family's real processor classes around ``tok`` (Qwen counts tokens per image itself)."""
    return getattr(transformers, facts.processor_class)(
        image_processor=transformers.Qwen2VLImageProcessor(**image_settings),
        tokenizer=tok,
        video_processor=transformers.Qwen2VLVideoProcessor(),
        chat_template=tok.chat_template,
    )


def build_tiny(facts: FamilyFacts, words: list[str], image_size: int):
    """``(model, processor)``: toy-size config of ``facts.model_class``, real processor classes."""
    tok = build_word_tokenizer(
        words,
        SPECIALS,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=chat_template(facts),
    )
    ids = tok.get_vocab()
    pixels = (image_size // 28 * 28) ** 2
    image_settings = dict(
        min_pixels=pixels, max_pixels=pixels, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    vision = dict(depth=2, num_heads=2, patch_size=14, spatial_merge_size=2)
    if facts.name == "qwen2_vl":
        vision |= dict(embed_dim=32, hidden_size=64, mlp_ratio=2)
    else:
        vision |= dict(
            hidden_size=32,
            intermediate_size=64,
            out_hidden_size=64,
            window_size=56,
            fullatt_block_indexes=[1],
        )
    cls = getattr(transformers, facts.model_class)
    text = text_config(len(tok), rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    cfg = cls.config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=ids[facts.image_token],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=None,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    return cls(cfg).eval(), make_processor(facts, tok, image_settings, None)
