"""Config section ``model`` of PanoAdapt and the one family table it is validated against.

The table (``FAMILIES``) is pure data (no torch), so the config schema stays a leaf: the family
list of ``model.family``, the default checkpoint and the precision policy come from it, and the
adapters, loading, the tiny stand-ins and ``configs/panoadapt/generate.py`` read the same rows
(every field is read somewhere: ``tests/models/test_family_table.py``).

Adding a family = one row here + one adapter file ``adapters/<tiny_module>.py`` whose
``build_tiny(facts, words, image_size)`` builds the family's tiny random-weight stand-in.

Module paths are attribute paths from the HF ``*ForConditionalGeneration`` object (transformers
>= 5); LoRA groups are built from them (``language``/``vision`` = attention projections, as
published: r 32, alpha 64 on q/k/v/o; ``language_mlp``/``vision_mlp`` = the MLP projections,
opt-in). Qwen2-VL / Qwen2.5-VL fuse q/k/v into ``attn.qkv`` in the vision tower: a ``q_proj``
target there would match nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from panollava.strict import StrictModel

__all__ = [
    "FAMILIES",
    "FAMILY_NAMES",
    "Family",
    "FamilyFacts",
    "PanoAdaptConfig",
    "PrecisionError",
    "get_family",
]

# Attention / MLP projections of every family's language model (Qwen2, Qwen2.5, Gemma3 text).
_LLM_ATTENTION = r"(q_proj|k_proj|v_proj|o_proj)"
_LLM_MLP = r"(gate_proj|up_proj|down_proj)"


# Spellings of fp16 in train.precision and --dtype.
_FP16 = {"16-mixed", "16-true", "16", "float16", "fp16", "half", "torch.float16"}


class PrecisionError(ValueError):
    """fp16 asked of a bf16-only family (the message says what to use instead)."""


@dataclass(frozen=True)
class FamilyFacts:
    """Facts of one VLM family (see the module docstring for who reads which field)."""

    name: str
    model_class: str  # transformers class name: loading
    processor_class: str  # transformers processor class name: loading, tiny stand-ins
    default_checkpoint: str  # HF id when model.checkpoint is unset: schema
    language_model: str  # module receiving inputs_embeds: wrapper hook, LoRA groups
    vision_tower: str  # LoRA groups
    vision_attention: str  # regex of the tower's attention projections (below the tower)
    vision_mlp: str  # regex of the tower's MLP projections
    image_token: str  # placeholder token text: tiny tokenizers, checked against the config id
    image_token_id_attr: str  # model.config attribute holding the placeholder id
    # How the processor turns one image into tokens (loading.view_tokens):
    # merged_patches: Qwen smart-resize, patch 14, merge 2; tiles: InternVL 448-px tiles of
    # image_seq_length tokens (+ thumbnail when cropped); fixed: image_seq_length per image.
    image_tokens: Literal["merged_patches", "tiles", "fixed"]
    rope_kind: Literal["mrope", "1d"]  # PanoRoPE position layout
    end_of_turn: str  # text closing an assistant turn: collate labels
    tiny_module: str  # adapters/<tiny_module>.py builds the tiny stand-in
    bf16_only: bool = False  # fp16 refused in training and inference (overflow)
    recipe_name: str | None = None  # configs/panoadapt/<recipe_name>_*.yaml (research grid)
    native_size: int = 448  # the model's own image size: recipe tile size

    @property
    def lora_groups(self) -> dict[str, str]:
        """Named LoRA target regexes (full module names) for ``lora.targets``."""
        lm, vt = re.escape(self.language_model), re.escape(self.vision_tower)
        return {
            "language": rf"{lm}\..*\.{_LLM_ATTENTION}",
            "language_mlp": rf"{lm}\..*\.{_LLM_MLP}",
            "vision": rf"{vt}\..*\.{self.vision_attention}",
            "vision_mlp": rf"{vt}\..*\.{self.vision_mlp}",
        }

    def check_dtype(self, dtype: object) -> None:
        """Refuse fp16 (``16-mixed``, ``float16``, ...) for a bf16-only family."""
        if self.bf16_only and str(dtype) in _FP16:
            raise PrecisionError(
                f"{self.name} is bf16-only: fp16 ({dtype}) overflows with thousands of image "
                "tokens (loss 0, NaN gradients, empty answers); use bfloat16 "
                "(train.precision: bf16-mixed; --dtype bfloat16) or float32"
            )

    def image_token_id(self, model: Any) -> int:
        """The image placeholder id from the model config (never a hard-coded number)."""
        value = getattr(model.config, self.image_token_id_attr, None)
        if value is None:
            raise ValueError(f"{self.name}: model config has no {self.image_token_id_attr}")
        return int(value)


_ROWS = [
    FamilyFacts(
        name="internvl",
        model_class="InternVLForConditionalGeneration",
        processor_class="InternVLProcessor",
        default_checkpoint="OpenGVLab/InternVL3_5-2B-HF",
        language_model="model.language_model",
        vision_tower="model.vision_tower",
        # InternVisionModel layers: attention.{q,k,v}_proj + projection_layer, mlp.fc1/fc2
        vision_attention=r"attention\.(q_proj|k_proj|v_proj|projection_layer)",
        vision_mlp=r"mlp\.(fc1|fc2)",
        image_token="<IMG_CONTEXT>",
        image_token_id_attr="image_token_id",
        image_tokens="tiles",
        rope_kind="1d",
        end_of_turn="<|im_end|>\n",
        tiny_module="internvl",
        recipe_name="internvl3_5_2b",
        native_size=448,  # InternVL 448-px tiles (preprocessor_config size 448)
    ),
    FamilyFacts(
        name="qwen2_5_vl",
        model_class="Qwen2_5_VLForConditionalGeneration",
        processor_class="Qwen2_5_VLProcessor",
        default_checkpoint="Qwen/Qwen2.5-VL-3B-Instruct",
        language_model="model.language_model",
        vision_tower="model.visual",
        # Qwen2.5-VL vision blocks: fused attn.qkv + attn.proj; SwiGLU mlp
        vision_attention=r"attn\.(qkv|proj)",
        vision_mlp=r"mlp\.(gate_proj|up_proj|down_proj)",
        image_token="<|image_pad|>",
        image_token_id_attr="image_token_id",
        image_tokens="merged_patches",
        rope_kind="mrope",
        end_of_turn="<|im_end|>\n",
        tiny_module="qwen_vl",
        recipe_name="qwen2_5_vl_3b",
        native_size=448,
    ),
    FamilyFacts(
        name="qwen2_vl",
        model_class="Qwen2VLForConditionalGeneration",
        processor_class="Qwen2VLProcessor",
        default_checkpoint="Qwen/Qwen2-VL-2B-Instruct",
        language_model="model.language_model",
        vision_tower="model.visual",
        # Qwen2-VL vision blocks: fused attn.qkv + attn.proj; GELU mlp fc1/fc2
        vision_attention=r"attn\.(qkv|proj)",
        vision_mlp=r"mlp\.(fc1|fc2)",
        image_token="<|image_pad|>",
        image_token_id_attr="image_token_id",
        image_tokens="merged_patches",
        rope_kind="mrope",
        end_of_turn="<|im_end|>\n",
        tiny_module="qwen_vl",
        native_size=448,
    ),
    FamilyFacts(
        name="gemma3",
        model_class="Gemma3ForConditionalGeneration",
        processor_class="Gemma3Processor",
        default_checkpoint="google/gemma-3-4b-it",
        language_model="model.language_model",
        vision_tower="model.vision_tower",
        # SigLIP encoder layers: self_attn.{q,k,v,out}_proj, mlp.fc1/fc2
        vision_attention=r"self_attn\.(q_proj|k_proj|v_proj|out_proj)",
        vision_mlp=r"mlp\.(fc1|fc2)",
        image_token="<image_soft_token>",
        image_token_id_attr="image_token_id",
        image_tokens="fixed",
        rope_kind="1d",
        end_of_turn="<end_of_turn>\n",
        tiny_module="gemma3",
        bf16_only=True,  # fp16 overflows in Gemma3's activations (loss 0, NaN gradients)
        recipe_name="gemma3_4b",
        native_size=896,  # Gemma3 SigLIP at 896 px (preprocessor_config size 896)
    ),
]
FAMILIES: dict[str, FamilyFacts] = {f.name: f for f in _ROWS}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def get_family(name: str) -> FamilyFacts:
    if name not in FAMILIES:
        raise ValueError(f"unknown VLM family {name!r}; supported: {', '.join(FAMILIES)}")
    return FAMILIES[name]


# The family names of the table (a Literal so configs and CLI options list the choices).
Family = Literal[FAMILY_NAMES]  # type: ignore[valid-type]


class PanoAdaptConfig(StrictModel):
    """An off-the-shelf VLM adapted with LoRA (SYSTEM.md §5).

    The input mode is ``views.strategy``: ``resize``, ``native`` (the ERP through the model's own
    processor) or a multi-view strategy (``cubemap``, ``pinhole``, ``anyres_e2p``, ...).
    """

    system: Literal["panoadapt"] = "panoadapt"
    family: Family
    source: Literal["pretrained", "tiny", "arch"] = Field(
        "pretrained", description="arch: the checkpoint's real architecture, random weights"
    )
    arch_layers: int | None = Field(
        None,
        ge=1,
        description="source arch: blocks kept in the LLM and vision tower (cost scaling)",
    )
    checkpoint: str | None = Field(None, description="HF id or path; None = the family default")
    panorope: bool = Field(False, description="panorama-aware position ids (train + generate)")
    view_labels: bool = Field(False, description="name each view's direction in the prompt")

    def check_dtype(self, dtype: object) -> None:
        """Raise ``PrecisionError`` for fp16 (a precision or dtype name) on a bf16-only family."""
        get_family(self.family).check_dtype(dtype)

    @model_validator(mode="after")
    def _arch_layers_need_arch(self) -> PanoAdaptConfig:
        if self.arch_layers is not None and self.source != "arch":
            raise ValueError("model.arch_layers only applies to model.source: arch")
        return self

    def resolved_checkpoint(self) -> str:
        return self.checkpoint or FAMILIES[self.family].default_checkpoint
