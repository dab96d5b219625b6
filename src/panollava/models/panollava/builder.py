"""Builders of PanoLLaVA: pretrained (hub ids) or tiny random-weight stand-ins of the real classes."""

from __future__ import annotations

import logging

import torch
from transformers import (
    AutoModelForCausalLM,
    PreTrainedTokenizerBase,
    Qwen3Config,
    SiglipVisionConfig,
)

from panollava.models.adapters.arch import build_arch_model, get_arch
from panollava.models.panollava.encoder import VisionEncoder
from panollava.models.panollava.model import PanoLLaVA
from panollava.models.panollava.projector import PanoramaProjector
from panollava.models.panollava.resamplers.registry import resampler_from_config
from panollava.models.panollava.schema import PanoLLaVAConfig, TinySizes
from panollava.positional import MultiViewPE, stitch_keep_index
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["build_panollava", "tiny_llm", "tiny_vision_encoder"]

log = logging.getLogger(__name__)


def tiny_vision_encoder(sizes: TinySizes, *, image_size: int) -> VisionEncoder:
    """A random-weight SigLIP vision tower (the class SigLIP2 fixed-res checkpoints load as)."""
    cfg = SiglipVisionConfig(
        hidden_size=sizes.vision_hidden,
        intermediate_size=2 * sizes.vision_hidden,
        num_hidden_layers=sizes.vision_layers,
        num_attention_heads=sizes.vision_heads,
        image_size=image_size,
        patch_size=sizes.patch_size,
    )
    return VisionEncoder.from_config(cfg)


def tiny_llm(sizes: TinySizes, *, vocab_size: int) -> torch.nn.Module:
    """A random-weight Qwen3 causal LM."""
    cfg = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=sizes.llm_hidden,
        intermediate_size=2 * sizes.llm_hidden,
        num_hidden_layers=sizes.llm_layers,
        num_attention_heads=sizes.llm_heads,
        num_key_value_heads=sizes.llm_kv_heads,
        head_dim=sizes.llm_hidden // sizes.llm_heads,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(cfg)


def ensure_vision_token(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """Add the vision placeholder as a special token if missing; return its id."""
    if token not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [token]})
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer cannot represent the vision token {token!r}")
    return int(token_id)


def build_panollava(
    cfg: PanoLLaVAConfig, views: ViewsConfig, tokenizer: PreTrainedTokenizerBase
) -> PanoLLaVA:
    """The full model for ``cfg`` (pretrained weights, or ``source: tiny`` stand-ins)."""
    layout = make_layout(views)
    vision_token_id = ensure_vision_token(tokenizer, cfg.vision_token)
    if cfg.source == "tiny":
        encoder = tiny_vision_encoder(cfg.tiny, image_size=views.tile_size)
        llm = tiny_llm(cfg.tiny, vocab_size=len(tokenizer))
    elif cfg.source == "arch":  # published architectures, random weights
        encoder = VisionEncoder(build_arch_model(get_arch(cfg.vision_name), layers=cfg.arch_layers))
        llm = build_arch_model(get_arch(cfg.llm_name), layers=cfg.arch_layers)
    else:
        encoder = VisionEncoder.from_pretrained(cfg.vision_name)
        llm = AutoModelForCausalLM.from_pretrained(cfg.llm_name)
        if len(tokenizer) > llm.get_input_embeddings().num_embeddings:
            llm.resize_token_embeddings(len(tokenizer))
    if encoder.image_size != views.tile_size:
        raise ValueError(
            f"views.tile_size={views.tile_size} but the encoder expects {encoder.image_size}² views"
        )
    llm_dim = llm.get_input_embeddings().embedding_dim
    res_cfg = cfg.resampler
    res_dim = res_cfg.hidden_dim or encoder.hidden_size
    resampler = resampler_from_config(
        res_cfg, in_dim=encoder.hidden_size, out_dim=res_dim, grid=encoder.grid
    )
    grid = resampler.output_grid(encoder.grid)
    tokens_per_view = resampler.num_output_tokens(encoder.grid)
    pe = None
    if cfg.projector.pe:
        pe = MultiViewPE(
            res_dim,
            layout,
            grid,
            shortest_period_patches=cfg.projector.pe_shortest_period,
            dropout=cfg.projector.pe_dropout,
        )
    keep = None
    if cfg.projector.stitching == "stride_views":
        keep = stitch_keep_index(layout, grid, mode="stride_views")
    projector = PanoramaProjector(
        in_dim=res_dim,
        out_dim=llm_dim,
        num_views=len(layout),
        tokens_per_view=tokens_per_view,
        hidden_dim=cfg.projector.hidden_dim,
        pe=pe,
        keep_index=keep,
    )
    model = PanoLLaVA(
        encoder=encoder,
        resampler=resampler,
        projector=projector,
        llm=llm,
        layout=layout,
        vision_token_id=vision_token_id,
        feature_source=cfg.overlap_features,
    )
    log.info(
        "PanoLLaVA: %d views x %d tokens -> %d image tokens",
        len(layout),
        tokens_per_view,
        model.num_image_tokens,
    )
    return model
