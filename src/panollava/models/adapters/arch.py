"""Architecture-exact stand-ins: the published config values of every target checkpoint.

One row per target (``ARCH``): the HF config of the checkpoint (values copied from its
``config.json`` on the model page, source in a comment next to each block), its image-processor
settings (``preprocessor_config.json``), the ids of its special tokens, and its published size.
The rows are plain data; :func:`build_arch_model` turns a row into the real HF model class with
random weights (``device="meta"`` allocates nothing, for inspection), optionally truncated to
``layers`` blocks in both the LLM and the vision tower (cost scaling: same width, fewer blocks).
Processors with these settings: :mod:`panollava.models.adapters.arch_processing`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers

__all__ = [
    "ARCH",
    "ArchRow",
    "arch_for_checkpoint",
    "build_arch_model",
    "get_arch",
    "truncated_config",
]


@dataclass(frozen=True)
class ArchRow:
    """One target checkpoint. ``config``: kwargs of ``config_class`` (published values)."""

    key: str
    checkpoint: str
    kind: str  # "vlm" (a PanoAdapt family), "vision" or "llm" (PanoLLaVA default parts)
    family: str | None
    config_class: str
    model_class: str
    config: dict[str, Any]
    published_params: float  # parameters, as published
    published_source: str
    image_processor: dict[str, Any] = field(default_factory=dict)
    specials: dict[str, int] = field(default_factory=dict)  # token -> published id
    roles: dict[str, str] = field(default_factory=dict)  # eos/pad/bos -> token


# --- shared published blocks -------------------------------------------------------------------
# Qwen2 tokenizer ids: config.json of Qwen/Qwen2.5-VL-3B-Instruct (bos 151643, eos 151645,
# vision_start 151652, vision_end 151653, image 151655, video 151656); <|im_start|> 151644 from
# its tokenizer_config.json added_tokens_decoder.
_QWEN_SPECIALS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}
_QWEN_ROLES = {"eos": "<|im_end|>", "pad": "<|endoftext|>"}
_QWEN_IDS = dict(
    bos_token_id=151643,
    eos_token_id=151645,
    vision_start_token_id=151652,
    vision_end_token_id=151653,
    image_token_id=151655,
    video_token_id=151656,
)
# preprocessor_config.json of Qwen/Qwen2-VL-2B-Instruct and Qwen/Qwen2.5-VL-*-Instruct.
_QWEN_PROCESSOR = dict(
    min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2, temporal_patch_size=2
)
# vision_config of config.json of Qwen/Qwen2.5-VL-3B-Instruct (identical in the 7B).
_QWEN25_VISION = dict(
    depth=32,
    hidden_size=1280,
    intermediate_size=3420,
    num_heads=16,
    in_chans=3,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
    hidden_act="silu",
)
# vision_config of config.json of OpenGVLab/InternVL3-2B-hf (InternViT-300M-448px, shared by the
# InternVL3.5 1B/2B -HF checkpoints).
_INTERNVIT_300M = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=[448, 448],
    patch_size=[14, 14],
    attention_bias=True,
    use_qk_norm=False,
    layer_scale_init_value=0.1,
    norm_type="layer_norm",
    use_mean_pooling=True,
    hidden_act="gelu",
    layer_norm_eps=1e-6,
)
# preprocessor_config.json of OpenGVLab/InternVL3-2B-hf / InternVL3_5-*-HF: 448-px tiles,
# 1..12 crops (InternVLProcessor turns crop_to_patches on by default).
_INTERNVL_PROCESSOR = dict(
    size={"height": 448, "width": 448}, crop_to_patches=False, min_patches=1, max_patches=12
)
_INTERNVL_TOP = dict(
    downsample_ratio=0.5, image_seq_length=256, projector_hidden_act="gelu", vision_feature_layer=-1
)
# Qwen3-0.6B / Qwen3-1.7B text blocks: config.json of Qwen/Qwen3-0.6B and Qwen/Qwen3-1.7B.
_QWEN3_COMMON = dict(
    vocab_size=151936,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    hidden_act="silu",
)


def _internvl_specials(first: int) -> dict[str, int]:
    """<img>, </img>, <IMG_CONTEXT> are consecutive added tokens (tokenizer_config.json)."""
    return {
        "<|endoftext|>": 151643,
        "<|im_start|>": 151644,
        "<|im_end|>": 151645,
        "<img>": first,
        "</img>": first + 1,
        "<IMG_CONTEXT>": first + 2,
        # not published in config.json and unused here (no video): any free id
        "<video>": 151900,
    }


ARCH: dict[str, ArchRow] = {
    "qwen2_vl_2b": ArchRow(
        key="qwen2_vl_2b",
        checkpoint="Qwen/Qwen2-VL-2B-Instruct",
        kind="vlm",
        family="qwen2_vl",
        config_class="Qwen2VLConfig",
        model_class="Qwen2VLForConditionalGeneration",
        # config.json of Qwen/Qwen2-VL-2B-Instruct
        config=dict(
            text_config=dict(
                vocab_size=151936,
                hidden_size=1536,
                intermediate_size=8960,
                num_hidden_layers=28,
                num_attention_heads=12,
                num_key_value_heads=2,
                max_position_embeddings=32768,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=True,
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            ),
            vision_config=dict(
                depth=32,
                embed_dim=1280,
                hidden_size=1536,
                mlp_ratio=4,
                num_heads=16,
                in_chans=3,
                patch_size=14,
                spatial_merge_size=2,
                temporal_patch_size=2,
                hidden_act="quick_gelu",
            ),
            tie_word_embeddings=True,
            **_QWEN_IDS,
        ),
        published_params=2.21e9,  # model page (safetensors): 2.21B params
        published_source="huggingface.co/Qwen/Qwen2-VL-2B-Instruct model size 2.21B",
        image_processor=_QWEN_PROCESSOR,
        specials=_QWEN_SPECIALS,
        roles=_QWEN_ROLES,
    ),
    "qwen2_5_vl_3b": ArchRow(
        key="qwen2_5_vl_3b",
        checkpoint="Qwen/Qwen2.5-VL-3B-Instruct",
        kind="vlm",
        family="qwen2_5_vl",
        config_class="Qwen2_5_VLConfig",
        model_class="Qwen2_5_VLForConditionalGeneration",
        # config.json of Qwen/Qwen2.5-VL-3B-Instruct
        config=dict(
            text_config=dict(
                vocab_size=151936,
                hidden_size=2048,
                intermediate_size=11008,
                num_hidden_layers=36,
                num_attention_heads=16,
                num_key_value_heads=2,
                max_position_embeddings=128000,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=True,
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            ),
            vision_config=dict(_QWEN25_VISION, out_hidden_size=2048),
            tie_word_embeddings=True,
            **_QWEN_IDS,
        ),
        published_params=3.75e9,
        published_source="huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct model size 3.75B",
        image_processor=_QWEN_PROCESSOR,
        specials=_QWEN_SPECIALS,
        roles=_QWEN_ROLES,
    ),
    "qwen2_5_vl_7b": ArchRow(
        key="qwen2_5_vl_7b",
        checkpoint="Qwen/Qwen2.5-VL-7B-Instruct",
        kind="vlm",
        family="qwen2_5_vl",
        config_class="Qwen2_5_VLConfig",
        model_class="Qwen2_5_VLForConditionalGeneration",
        # config.json of Qwen/Qwen2.5-VL-7B-Instruct
        config=dict(
            text_config=dict(
                vocab_size=152064,
                hidden_size=3584,
                intermediate_size=18944,
                num_hidden_layers=28,
                num_attention_heads=28,
                num_key_value_heads=4,
                max_position_embeddings=128000,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=False,
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            ),
            vision_config=dict(_QWEN25_VISION, out_hidden_size=3584),
            tie_word_embeddings=False,
            **_QWEN_IDS,
        ),
        published_params=8.29e9,
        published_source="huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct model size 8.29B",
        image_processor=_QWEN_PROCESSOR,
        specials=_QWEN_SPECIALS,
        roles=_QWEN_ROLES,
    ),
    "internvl3_2b": ArchRow(
        key="internvl3_2b",
        checkpoint="OpenGVLab/InternVL3-2B-hf",
        kind="vlm",
        family="internvl",
        config_class="InternVLConfig",
        model_class="InternVLForConditionalGeneration",
        # config.json of OpenGVLab/InternVL3-2B-hf (text: Qwen2.5-1.5B, untied head)
        config=dict(
            vision_config=_INTERNVIT_300M,
            text_config=dict(
                model_type="qwen2",
                vocab_size=151674,
                hidden_size=1536,
                intermediate_size=8960,
                num_hidden_layers=28,
                num_attention_heads=12,
                num_key_value_heads=2,
                max_position_embeddings=32768,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=False,
            ),
            image_token_id=151667,
            tie_word_embeddings=False,
            **_INTERNVL_TOP,
        ),
        published_params=2.09e9,
        published_source="huggingface.co/OpenGVLab/InternVL3-2B-hf model size 2.09B",
        image_processor=_INTERNVL_PROCESSOR,
        specials=_internvl_specials(151665),
        roles=_QWEN_ROLES,
    ),
    "internvl3_5_1b": ArchRow(
        key="internvl3_5_1b",
        checkpoint="OpenGVLab/InternVL3_5-1B-HF",
        kind="vlm",
        family="internvl",
        config_class="InternVLConfig",
        model_class="InternVLForConditionalGeneration",
        # config.json of OpenGVLab/InternVL3_5-1B-HF (text: Qwen3-0.6B, untied head)
        config=dict(
            vision_config=_INTERNVIT_300M,
            text_config=dict(
                model_type="qwen3",
                hidden_size=1024,
                intermediate_size=3072,
                tie_word_embeddings=False,
                **_QWEN3_COMMON,
            ),
            image_token_id=151671,
            tie_word_embeddings=False,
            **_INTERNVL_TOP,
        ),
        published_params=1.06e9,
        published_source="huggingface.co/OpenGVLab/InternVL3_5-1B-HF model size 1.06B",
        image_processor=_INTERNVL_PROCESSOR,
        specials=_internvl_specials(151669),
        roles=_QWEN_ROLES,
    ),
    "internvl3_5_2b": ArchRow(
        key="internvl3_5_2b",
        checkpoint="OpenGVLab/InternVL3_5-2B-HF",
        kind="vlm",
        family="internvl",
        config_class="InternVLConfig",
        model_class="InternVLForConditionalGeneration",
        # config.json of OpenGVLab/InternVL3_5-2B-HF (text: Qwen3-1.7B, untied head)
        config=dict(
            vision_config=_INTERNVIT_300M,
            text_config=dict(
                model_type="qwen3",
                hidden_size=2048,
                intermediate_size=6144,
                tie_word_embeddings=False,
                **_QWEN3_COMMON,
            ),
            image_token_id=151671,
            tie_word_embeddings=False,
            **_INTERNVL_TOP,
        ),
        published_params=2.35e9,
        published_source="huggingface.co/OpenGVLab/InternVL3_5-2B-HF model size 2.35B",
        image_processor=_INTERNVL_PROCESSOR,
        specials=_internvl_specials(151669),
        roles=_QWEN_ROLES,
    ),
    "gemma3_4b": ArchRow(
        key="gemma3_4b",
        checkpoint="google/gemma-3-4b-it",
        kind="vlm",
        family="gemma3",
        config_class="Gemma3Config",
        model_class="Gemma3ForConditionalGeneration",
        # config.json of google/gemma-3-4b-it
        config=dict(
            text_config=dict(
                vocab_size=262208,
                hidden_size=2560,
                intermediate_size=10240,
                num_hidden_layers=34,
                num_attention_heads=8,
                num_key_value_heads=4,
                head_dim=256,
                sliding_window=1024,
                query_pre_attn_scalar=256,
                max_position_embeddings=131072,
                rope_theta=1000000.0,
                rope_local_base_freq=10000.0,
                rope_scaling={"rope_type": "linear", "factor": 8.0},
                rms_norm_eps=1e-6,
            ),
            # SigLIP so400m/14 at 896 px, no pooling head (vision_use_head false)
            vision_config=dict(
                hidden_size=1152,
                intermediate_size=4304,
                num_hidden_layers=27,
                num_attention_heads=16,
                image_size=896,
                patch_size=14,
                vision_use_head=False,
            ),
            mm_tokens_per_image=256,
            boi_token_index=255999,
            eoi_token_index=256000,
            image_token_index=262144,
        ),
        published_params=4.30e9,
        published_source="huggingface.co/google/gemma-3-4b-it model size 4.3B",
        # preprocessor_config.json of google/gemma-3-4b-it; processor_config: 256 tokens/image
        image_processor=dict(
            size={"height": 896, "width": 896},
            do_pan_and_scan=False,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        ),
        # tokenizer_config.json of google/gemma-3-4b-it (added_tokens_decoder)
        specials={
            "<pad>": 0,
            "<eos>": 1,
            "<bos>": 2,
            "<start_of_turn>": 105,
            "<end_of_turn>": 106,
            "<start_of_image>": 255999,
            "<end_of_image>": 256000,
            "<image_soft_token>": 262144,
        },
        roles={"eos": "<eos>", "pad": "<pad>", "bos": "<bos>"},
    ),
    "siglip2_so400m_256": ArchRow(
        key="siglip2_so400m_256",
        checkpoint="google/siglip2-so400m-patch16-256",
        kind="vision",
        family=None,
        config_class="SiglipVisionConfig",
        model_class="SiglipVisionModel",
        # vision_config of config.json of google/siglip2-so400m-patch16-256
        config=dict(
            hidden_size=1152,
            intermediate_size=4304,
            num_hidden_layers=27,
            num_attention_heads=16,
            image_size=256,
            patch_size=16,
            hidden_act="gelu_pytorch_tanh",
            layer_norm_eps=1e-6,
        ),
        # SoViT-400m/14 vision tower: 428M (Alabdulmohsin et al. 2023, "Getting ViT in Shape",
        # Table 1); the /16 patch embedding and 256 positions change it by < 0.1%.
        published_params=4.28e8,
        published_source="SoViT-400m/14: 428M params (Getting ViT in Shape, arXiv 2305.13035)",
    ),
    "qwen3_0_6b": ArchRow(
        key="qwen3_0_6b",
        checkpoint="Qwen/Qwen3-0.6B",
        kind="llm",
        family=None,
        config_class="Qwen3Config",
        model_class="Qwen3ForCausalLM",
        # config.json of Qwen/Qwen3-0.6B
        config=dict(
            hidden_size=1024, intermediate_size=3072, tie_word_embeddings=True, **_QWEN3_COMMON
        ),
        published_params=0.6e9,
        published_source="model card of Qwen/Qwen3-0.6B: Number of Parameters 0.6B",
        specials={"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645},
        roles=_QWEN_ROLES,
    ),
}

# PanoAdapt family -> the row of its default checkpoint (models/adapters/schema.py).
_FAMILY_DEFAULT = {
    "qwen2_vl": "qwen2_vl_2b",
    "qwen2_5_vl": "qwen2_5_vl_3b",
    "internvl": "internvl3_5_2b",
    "gemma3": "gemma3_4b",
}


def get_arch(key: str) -> ArchRow:
    """The row ``key`` (a row key, a hub id of a row, or a family name for its default)."""
    key = _FAMILY_DEFAULT.get(key, key)
    for row in ARCH.values():
        if key in (row.key, row.checkpoint) or key.lower() == row.checkpoint.lower():
            return row
    known = ", ".join([*ARCH, *_FAMILY_DEFAULT])
    raise ValueError(f"no architecture row for {key!r}; known targets: {known}")


def arch_for_checkpoint(family: str, checkpoint: str | None) -> ArchRow:
    """The row of ``checkpoint`` (None: the family default); refuses a row of another family."""
    row = get_arch(checkpoint or family)
    if row.family != family:
        raise ValueError(
            f"model.source=arch: {row.checkpoint} is a {row.family or row.kind} architecture, "
            f"not family {family!r}"
        )
    return row


def truncated_config(row: ArchRow, layers: int | tuple[int, int] | None) -> dict[str, Any]:
    """``row.config`` with ``layers`` blocks in the LLM and the vision tower (None: published;
    a pair: ``(llm, vision)`` blocks, for fitting the per-block cost of each tower)."""
    cfg = copy.deepcopy(row.config)
    if layers is None:
        return cfg
    llm, vision = layers if isinstance(layers, tuple) else (layers, layers)
    if min(llm, vision) < 1:
        raise ValueError(f"arch_layers must be >= 1, got {layers}")
    parts = [(cfg.get("text_config"), llm), (cfg.get("vision_config"), vision)]
    if row.kind != "vlm":
        parts = [(cfg, llm)]
    for part, keep in parts:
        if part is None:
            continue
        for depth_key in ("num_hidden_layers", "depth"):
            if depth_key in part:
                part[depth_key] = min(part[depth_key], keep)
        if "fullatt_block_indexes" in part:  # keep a full-attention block before the merger
            kept = [i for i in part["fullatt_block_indexes"] if i < part["depth"]]
            part["fullatt_block_indexes"] = kept or [part["depth"] - 1]
    return cfg


def build_arch_model(
    row: ArchRow,
    *,
    layers: int | tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> torch.nn.Module:
    """The real HF model class of ``row`` with random weights (``device="meta"``: no memory)."""
    cfg = truncated_config(row, layers)
    config = getattr(transformers, row.config_class)(**cfg)
    cls = getattr(transformers, row.model_class)
    torch.manual_seed(seed)
    with torch.device(device):
        model = cls._from_config(config, dtype=dtype)
    if row.family == "gemma3" and str(device) != "meta":
        # HF initialises Gemma3's projector to zeros (checkpoints overwrite it): a zero projector
        # makes every image token identical and cuts the vision tower off every loss.
        with torch.no_grad():
            model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, 0.02)
    return model.eval()
