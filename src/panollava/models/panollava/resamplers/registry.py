"""Resamplers between the vision encoder and the projector, with a registry and builders.

Usage::

    resampler = build_resampler("bimamba", in_dim=1152, out_dim=1024, grid=(16, 16), depth=4)
    resampler = resampler_from_config(cfg.resampler, in_dim=1152, out_dim=1024, grid=(16, 16))
    tokens, grid_out = resampler(features)  # (B*V, 256, 1152) -> (B*V, N_out, 1024); grid|None
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from panollava.models.panollava.resamplers.base import Grid, Resampler
from panollava.models.panollava.resamplers.bimamba import BiMambaResampler
from panollava.models.panollava.resamplers.c_abstractor import CAbstractorResampler
from panollava.models.panollava.resamplers.mlp import MLPResampler
from panollava.models.panollava.resamplers.perceiver import PerceiverResampler
from panollava.models.panollava.resamplers.qformer import QFormerResampler
from panollava.models.panollava.resamplers.schema import ResamplerConfig

__all__ = ["RESAMPLERS", "build_resampler", "resampler_from_config"]

logger = logging.getLogger(__name__)

RESAMPLERS: dict[str, type[Resampler]] = {
    cls.kind: cls
    for cls in (
        MLPResampler,
        BiMambaResampler,
        QFormerResampler,
        PerceiverResampler,
        CAbstractorResampler,
    )
}


def build_resampler(
    kind: str, *, in_dim: int, out_dim: int, grid: Grid, **kwargs: Any
) -> Resampler:
    """Build resampler ``kind`` for ``(B*V, grid[0]*grid[1], in_dim)`` features.

    ``kwargs`` are the class's keyword-only sizes (``hidden_dim``, ``depth``, ...); an unknown
    kind or keyword raises ValueError listing the valid ones.
    """
    cls = RESAMPLERS.get(kind)
    if cls is None:
        raise ValueError(f"unknown resampler {kind!r}; valid: {', '.join(RESAMPLERS)}")
    params = inspect.signature(cls.__init__).parameters
    valid = sorted(set(params) - {"self", "in_dim", "out_dim", "grid"})
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"resampler {kind!r} got unknown options {unknown}; valid: {valid}")
    return cls(in_dim=in_dim, out_dim=out_dim, grid=grid, **kwargs)


def resampler_from_config(
    cfg: ResamplerConfig, *, in_dim: int, out_dim: int, grid: Grid
) -> Resampler:
    """Build the resampler ``cfg`` describes; warns about set fields its type ignores."""
    ignored = cfg.ignored_fields()
    if ignored:
        logger.warning(
            "resampler.type=%r ignores the options %s (set in the config)", cfg.type, ignored
        )
    return build_resampler(
        cfg.type, in_dim=in_dim, out_dim=out_dim, grid=grid, **cfg.builder_kwargs()
    )
