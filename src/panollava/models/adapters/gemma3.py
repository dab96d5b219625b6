"""Gemma3 adapter: the tiny random-weight stand-in (SigLIP without pooling head, as the real one)."""

from __future__ import annotations

import torch
import transformers

from panollava.models.adapters.families import FamilyFacts
from panollava.models.adapters.tiny import build_word_tokenizer, text_config

__all__ = ["TEMPLATE", "build_tiny", "chat_template", "make_processor", "named_tokens"]

SPECIALS = ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]
# Gemma3's template starts with {{ bos_token }}; images are <start_of_image> markers.
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<start_of_image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def named_tokens(facts: FamilyFacts) -> dict[str, str]:
    """Special tokens the real tokenizer names as attributes (the processor reads them)."""
    return {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": facts.image_token,
    }


def chat_template(facts: FamilyFacts) -> str:
    return TEMPLATE


def make_processor(facts: FamilyFacts, tok, image_settings: dict, image_seq_length: int | None):
    """The family's real processor classes around ``tok`` (``image_seq_length`` per image)."""
    return getattr(transformers, facts.processor_class)(
        image_processor=transformers.Gemma3ImageProcessor(**image_settings),
        tokenizer=tok,
        chat_template=tok.chat_template,
        image_seq_length=image_seq_length,
    )


def build_tiny(facts: FamilyFacts, words: list[str], image_size: int):
    """``(model, processor)``: toy-size Gemma3; its tokenizer adds ``<bos>`` like the real one."""
    tok = build_word_tokenizer(
        words,
        [*SPECIALS, "<start_of_image>", "<end_of_image>", facts.image_token],
        eos="<eos>",
        pad="<pad>",
        bos="<bos>",
        chat_template=chat_template(facts),
        named=named_tokens(facts),
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
        vision_use_head=False,  # google/gemma-3-4b-it config.json: vision_use_head false
    )
    cls = getattr(transformers, facts.model_class)
    cfg = cls.config_class(
        text_config=text_config(len(tok), sliding_window=64),
        vision_config=vision,
        mm_tokens_per_image=tokens_per_image,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids[facts.image_token],
    )
    image_settings = dict(size={"height": image_size, "width": image_size})
    processor = make_processor(facts, tok, image_settings, tokens_per_image)
    model = cls(cfg).eval()
    # HF initialises the projector to zeros (real checkpoints overwrite it): a zero projector would
    # make every image token identical and cut the vision tower off every loss.
    with torch.no_grad():
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, 0.1)
    return model, processor
