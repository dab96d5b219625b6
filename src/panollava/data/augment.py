"""Train-time augmentations that respect the sphere, with reproducible per-sample randomness.

* **Yaw rotation**: a circular roll of the ERP columns (applied before the views are cut) is an
  exact rotation of the sphere about its vertical axis — no resampling, the seam stays seamless.
* **Photometric jitter**: brightness, contrast and saturation factors.

Randomness never touches the global RNG: :func:`sample_generator` seeds a private generator
from ``(seed, epoch, sample index)``, so a resumed run (or another worker layout) draws exactly
the same augmentation for the same sample of the same epoch.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from panollava.data.schema import AugmentConfig

__all__ = ["AugmentParams", "augment_erp", "draw_params", "rotate_yaw", "sample_generator"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for the gray image


@dataclass(frozen=True)
class AugmentParams:
    """One draw: yaw in degrees (columns rolled), photometric factors (1 = unchanged)."""

    yaw_deg: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded by a stable hash of ``(seed, epoch, index)`` (no collisions of
    nearby triples, unlike ``seed + epoch + index``)."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def draw_params(cfg: AugmentConfig, generator: torch.Generator) -> AugmentParams:
    """Draw all parameters in a fixed order (turning one knob never shifts the others)."""
    u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()  # (4,) in [0, 1)
    if not cfg.enabled:
        return AugmentParams()

    def factor(x: float, r: float) -> float:
        return 1.0 + x * (2.0 * r - 1.0)

    return AugmentParams(
        yaw_deg=cfg.yaw_max_deg * (2.0 * u[0] - 1.0),
        brightness=factor(cfg.brightness, u[1]),
        contrast=factor(cfg.contrast, u[2]),
        saturation=factor(cfg.saturation, u[3]),
    )


def rotate_yaw(erp: torch.Tensor, yaw_deg: float) -> torch.Tensor:
    """The panorama seen after turning the camera right by ``yaw_deg``: ``(..., H, W)`` ->
    ``(..., H, W)`` with ``out(lon) = erp(lon + yaw)``, rounded to whole columns."""
    width = erp.shape[-1]
    shift = round(yaw_deg / 360.0 * width) % width
    if shift == 0:
        return erp
    return torch.roll(erp, shifts=-shift, dims=-1)


def _gray(img: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` -> luma ``(1, H, W)``."""
    w = torch.tensor(_LUMA, dtype=img.dtype, device=img.device).view(3, 1, 1)
    return (img * w).sum(0, keepdim=True)


def _photometric(img: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    """Brightness, contrast (around the mean luma), saturation (around the luma), clamped."""
    out = img
    if not math.isclose(p.brightness, 1.0):
        out = out * p.brightness
    if not math.isclose(p.contrast, 1.0):
        mean = _gray(out).mean()
        out = (out - mean) * p.contrast + mean
    if not math.isclose(p.saturation, 1.0):
        gray = _gray(out)  # (1, H, W)
        out = (out - gray) * p.saturation + gray
    return out.clamp(0.0, 1.0) if out is not img else img


def augment_erp(
    erp: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, AugmentParams]:
    """Augment one ERP ``(3, H, W)`` in ``[0, 1]``; returns the new ERP and the parameters."""
    params = draw_params(cfg, generator)
    if not cfg.enabled:
        return erp, params
    out = rotate_yaw(erp, params.yaw_deg)
    return _photometric(out, params), params
