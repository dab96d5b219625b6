"""Vision encoder wrapper: any HF image backbone -> per-view patch features on a square grid.

SigLIP / SigLIP2 fixed-resolution checkpoints (``google/siglip2-so400m-patch16-256`` loads as a
SigLIP model), CLIP and DINOv2 are supported; class/register tokens are dropped so that every
backbone yields ``(B*V, gh*gw, D)`` patch tokens in raster order.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from panollava.views import unit_float

__all__ = ["VisionEncoder"]

# Pixel normalisation each backbone family was trained with (mean, std per RGB channel).
_NORMALISATION = {
    "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "dinov2": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def _vision_part(model: nn.Module) -> nn.Module:
    """The image tower of a dual-encoder checkpoint (SigLIP/CLIP), or the model itself."""
    return getattr(model, "vision_model", model)


def _encoder_blocks(vision: nn.Module) -> nn.ModuleList:
    enc = vision.encoder
    blocks = getattr(enc, "layers", None) or getattr(enc, "layer", None)
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(f"cannot find the transformer blocks of {type(vision).__name__}")
    return blocks


class VisionEncoder(nn.Module):
    """Wraps an HF vision backbone. ``forward(pixels (N, 3, H, W)) -> (N, gh*gw, D)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = _vision_part(backbone)
        cfg = self.backbone.config
        cfg = getattr(cfg, "vision_config", cfg)
        self.hidden_size: int = cfg.hidden_size
        self.image_size: int = cfg.image_size
        self.patch_size: int = cfg.patch_size
        side = self.image_size // self.patch_size
        self.grid: tuple[int, int] = (side, side)
        model_type = cfg.model_type
        # Leading non-patch tokens: CLIP has a class token, DINOv2 a class token (+ registers).
        self.num_prefix_tokens = 0
        if model_type.startswith("clip"):
            self.num_prefix_tokens = 1
        elif model_type.startswith("dinov2"):
            self.num_prefix_tokens = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
        family = next((k for k in _NORMALISATION if model_type.startswith(k)), None)
        if family is None:
            raise ValueError(
                f"unsupported vision backbone {model_type!r}: use SigLIP, CLIP or DINOv2"
            )
        mean, std = _NORMALISATION[family]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> VisionEncoder:
        """Random-weight backbone from an HF config (used by tests and the tiny demo)."""
        return cls(AutoModel.from_config(config))

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> VisionEncoder:
        """Pretrained backbone, e.g. ``google/siglip2-so400m-patch16-256``."""
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
        return cls(AutoModel.from_pretrained(name_or_path, config=config, **kwargs))

    @property
    def blocks(self) -> nn.ModuleList:
        return _encoder_blocks(self.backbone)

    def set_trainable_blocks(self, n: int) -> None:
        """Freeze the encoder, then unfreeze the last ``n`` blocks (``-1`` all, ``0`` none)."""
        self.backbone.requires_grad_(n == -1)
        if n > 0:
            blocks = self.blocks
            if n > len(blocks):
                raise ValueError(f"vision_trainable_blocks={n} but the encoder has {len(blocks)}")
            for block in blocks[len(blocks) - n :]:
                block.requires_grad_(True)
            post = getattr(self.backbone, "post_layernorm", None) or getattr(
                self.backbone, "layernorm", None
            )
            if post is not None:
                post.requires_grad_(True)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Views ``(N, 3, H, W)`` (uint8, or float in ``[0, 1]``) -> patch tokens
        ``(N, gh*gw, D)``."""
        dtype = next(self.backbone.parameters()).dtype
        pixels = ((unit_float(pixels) - self.mean) / self.std).to(dtype)
        out = self.backbone(pixel_values=pixels)
        tokens = out.last_hidden_state[:, self.num_prefix_tokens :]
        n = tokens.shape[1]
        if n != self.grid[0] * self.grid[1]:
            side = math.isqrt(n)
            if side * side != n:
                raise ValueError(f"encoder returned {n} patch tokens, not a square grid")
            self.grid = (side, side)
        return tokens
