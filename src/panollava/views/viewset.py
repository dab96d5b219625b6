"""ViewSet: the pixels of a panorama's views plus their layout (cameras, sizes, adjacency)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from panollava.geometry import required_erp_width as _required_width
from panollava.geometry import sample_views
from panollava.views.layout import ViewLayout, ViewMeta, make_layout
from panollava.views.schema import ViewsConfig

__all__ = [
    "ViewSet",
    "build_viewset",
    "build_viewsets",
    "required_erp_width",
    "unit_float",
    "unit_uint8",
]


def unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels (an ERP or views) as float in ``[0, 1]``: uint8 scaled by 1/255, float as is."""
    return pixels.float().div_(255.0) if pixels.dtype == torch.uint8 else pixels


def unit_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels as uint8 levels: float in ``[0, 1]`` clamped and rounded, uint8 as is."""
    if pixels.dtype == torch.uint8:
        return pixels
    return (pixels.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8)


@dataclass
class ViewSet:
    """Views of one panorama.

    ``pixels`` is ``(V, 3, h, w)`` (for ``native`` the ERP itself, at its own resolution): uint8
    when cut from a uint8 ERP (8-bit files as decoded: channels-last memory, 4x smaller than
    float, what image processors take), else float in ``[0, 1]`` (deeper files, augmented or
    GPU-decoded ERPs); :func:`unit_float` / :func:`unit_uint8` give either. ``layout`` describes
    each view (``layout.views[i]`` is view ``i``).
    """

    pixels: torch.Tensor
    layout: ViewLayout

    @property
    def views(self) -> tuple[ViewMeta, ...]:
        return self.layout.views

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        return self.layout.pairs

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def to_json(self) -> dict:
        """The layout's metadata with each view's size as its pixels really are (``native``: the
        ERP's own size, not the configured tile size)."""
        meta = self.layout.to_json()
        for entry in meta["views"]:
            entry["height"], entry["width"] = (int(n) for n in self.pixels.shape[-2:])
        return meta


def required_erp_width(cfg: ViewsConfig) -> int | None:
    """ERP width below which the configured views would be undersampled (None for ``native``)."""
    layout = make_layout(cfg)
    if layout.native:
        return None
    return _required_width(layout.geometries, (cfg.tile_size, cfg.tile_size))


def build_viewsets(erp: torch.Tensor, cfg: ViewsConfig) -> list[ViewSet]:
    """Views of a batch of ERPs ``(B, 3, H, W)`` (same size) -> ``B`` ViewSets, one sampling call.

    ``erp`` is float in ``[0, 1]`` or uint8 (the fast path: channels-last uint8 as
    :func:`panollava.data.images.decode_erp` returns it). The views keep its kind: uint8 levels
    from a uint8 ERP, float in ``[0, 1]`` from a float one.
    """
    layout = make_layout(cfg)
    if erp.ndim != 4 or erp.shape[1] != 3:
        raise ValueError(f"expected ERPs of shape (B, 3, H, W), got {tuple(erp.shape)}")
    if layout.native:
        return [ViewSet(e[None].contiguous(), layout) for e in erp]
    size = (cfg.tile_size, cfg.tile_size)
    u8 = erp.dtype == torch.uint8
    pixels = sample_views(
        erp, layout.geometries, size, cfg.interpolation, dtype=torch.uint8 if u8 else None
    )
    if cfg.interpolation == "bicubic" and not u8:  # uint8 rounding clamps already
        pixels = pixels.clamp(0.0, 1.0)
    return [ViewSet(p, layout) for p in pixels]


def build_viewset(erp: torch.Tensor, cfg: ViewsConfig) -> ViewSet:
    """Views of one ERP ``(3, H, W)`` (float in ``[0, 1]`` or uint8: the views keep its kind) per
    ``cfg`` (SYSTEM.md §2)."""
    return build_viewsets(erp[None], cfg)[0]
