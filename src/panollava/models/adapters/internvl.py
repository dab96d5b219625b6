"""InternVL (HF-native, InternVL3 / 3.5) adapter: the tiny random-weight stand-in."""

from __future__ import annotations

import transformers

from panollava.models.adapters.families import FamilyFacts
from panollava.models.adapters.tiny import CHATML, build_word_tokenizer, text_config

__all__ = ["build_tiny", "chat_template", "make_processor", "named_tokens"]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>"]  # + image, <video>


def named_tokens(facts: FamilyFacts) -> dict[str, str]:
    """Special tokens the real tokenizer names as attributes (the processor reads them)."""
    return {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": facts.image_token,
        "video_token": "<video>",
    }


def chat_template(facts: FamilyFacts) -> str:
    return CHATML.replace("IMAGE", facts.image_token)


def make_processor(facts: FamilyFacts, tok, image_settings: dict, image_seq_length: int | None):
    """The family's real processor classes around ``tok`` (``image_seq_length`` per tile)."""
    return getattr(transformers, facts.processor_class)(
        image_processor=transformers.GotOcr2ImageProcessor(**image_settings),
        tokenizer=tok,
        video_processor=transformers.InternVLVideoProcessor(),
        image_seq_length=image_seq_length,
        chat_template=tok.chat_template,
    )


def build_tiny(facts: FamilyFacts, words: list[str], image_size: int):
    """``(model, processor)``: toy-size InternVL (patch 14, pixel shuffle 0.5), one tile per view."""
    image_tokens = (image_size // 14 // 2) ** 2  # patch 14, pixel shuffle 0.5
    tok = build_word_tokenizer(
        words,
        [*SPECIALS, facts.image_token, "<video>"],
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=chat_template(facts),
        named=named_tokens(facts),
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
    cls = getattr(transformers, facts.model_class)
    cfg = cls.config_class(
        vision_config=vision,
        text_config=dict(model_type="qwen2", **text_config(len(tok))),
        image_token_id=ids[facts.image_token],
        image_seq_length=image_tokens,
        downsample_ratio=0.5,
    )
    image_settings = dict(size={"height": image_size, "width": image_size}, crop_to_patches=False)
    return cls(cfg).eval(), make_processor(facts, tok, image_settings, image_tokens)
