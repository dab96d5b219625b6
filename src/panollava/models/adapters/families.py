"""The one declarative table of VLM family facts PanoAdapt needs (transformers >= 5 layouts).

Adapters read these rows instead of branching on ``model_type``: where the language model and the
vision tower live, which token marks an image and where its id is configured, the RoPE kind,
LoRA target groups (Qwen2-VL / Qwen2.5-VL fuse q/k/v into ``attn.qkv`` in the vision tower: a
``q_proj`` target there matches nothing), the chat end-of-turn text and the precision policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import nn

__all__ = ["FAMILIES", "FamilyFacts", "get_family", "resolve_module"]

_LLM_PROJ = r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True)
class FamilyFacts:
    """Facts of one VLM family. Module paths are attribute paths from the HF model object."""

    name: str
    model_class: str
    processor_class: str
    default_checkpoint: str
    language_model: str
    vision_tower: str
    projector: str
    image_token: str
    image_token_id_attr: str
    rope_kind: Literal["mrope", "1d"]
    end_of_turn: str
    lora_groups: dict[str, str] = field(default_factory=dict)
    bf16_only: bool = False
    window_permuted_merger: bool = False  # HF un-permutes it inside the vision tower (>= 5.0)

    def image_token_id(self, model: nn.Module) -> int:
        """The image placeholder id from the model config (never a hard-coded number)."""
        value = getattr(model.config, self.image_token_id_attr, None)
        if value is None:
            raise ValueError(f"{self.name}: model config has no {self.image_token_id_attr}")
        return int(value)


FAMILIES: dict[str, FamilyFacts] = {
    "qwen2_5_vl": FamilyFacts(
        name="qwen2_5_vl",
        model_class="Qwen2_5_VLForConditionalGeneration",
        processor_class="Qwen2_5_VLProcessor",
        default_checkpoint="Qwen/Qwen2.5-VL-3B-Instruct",
        language_model="model.language_model",
        vision_tower="model.visual",
        projector="model.visual.merger",
        image_token="<|image_pad|>",
        image_token_id_attr="image_token_id",
        rope_kind="mrope",
        end_of_turn="<|im_end|>\n",
        lora_groups={
            "language": rf"model\.language_model\..*\.{_LLM_PROJ}",
            "vision": r"model\.visual\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.(gate_proj|up_proj|down_proj))",
        },
        window_permuted_merger=True,
    ),
    "qwen2_vl": FamilyFacts(
        name="qwen2_vl",
        model_class="Qwen2VLForConditionalGeneration",
        processor_class="Qwen2VLProcessor",
        default_checkpoint="Qwen/Qwen2-VL-2B-Instruct",
        language_model="model.language_model",
        vision_tower="model.visual",
        projector="model.visual.merger",
        image_token="<|image_pad|>",
        image_token_id_attr="image_token_id",
        rope_kind="mrope",
        end_of_turn="<|im_end|>\n",
        lora_groups={
            "language": rf"model\.language_model\..*\.{_LLM_PROJ}",
            "vision": r"model\.visual\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.(fc1|fc2))",
        },
    ),
    "internvl": FamilyFacts(
        name="internvl",
        model_class="InternVLForConditionalGeneration",
        processor_class="InternVLProcessor",
        default_checkpoint="OpenGVLab/InternVL3_5-2B-HF",
        language_model="model.language_model",
        vision_tower="model.vision_tower",
        projector="model.multi_modal_projector",
        image_token="<IMG_CONTEXT>",
        image_token_id_attr="image_token_id",
        rope_kind="1d",
        end_of_turn="<|im_end|>\n",
        lora_groups={
            "language": rf"model\.language_model\..*\.{_LLM_PROJ}",
            "vision": r"model\.vision_tower\..*\.(attention\.(q_proj|k_proj|v_proj|projection_layer)|mlp\.(fc1|fc2))",
        },
    ),
    "gemma3": FamilyFacts(
        name="gemma3",
        model_class="Gemma3ForConditionalGeneration",
        processor_class="Gemma3Processor",
        default_checkpoint="google/gemma-3-4b-it",
        language_model="model.language_model",
        vision_tower="model.vision_tower",
        projector="model.multi_modal_projector",
        image_token="<image_soft_token>",
        image_token_id_attr="image_token_id",
        rope_kind="1d",
        end_of_turn="<end_of_turn>\n",
        lora_groups={
            "language": rf"model\.language_model\..*\.{_LLM_PROJ}",
            "vision": r"model\.vision_tower\..*\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))",
        },
        bf16_only=True,
    ),
}


def get_family(name: str) -> FamilyFacts:
    if name not in FAMILIES:
        raise ValueError(f"unknown VLM family {name!r}; supported: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """``model.<path>`` with a clear error naming the missing attribute."""
    node = model
    for part in path.split("."):
        if not hasattr(node, part):
            raise AttributeError(
                f"{type(model).__name__} has no submodule {path!r} (missing {part!r})"
            )
        node = getattr(node, part)
    return node
