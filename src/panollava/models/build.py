"""``build_system(cfg)``: the :class:`~panollava.models.base.System` of the config's model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytorch_lightning import seed_everything

from panollava.config import PanoConfig
from panollava.models.adapters.system import build_panoadapt_system
from panollava.models.base import System
from panollava.models.panollava.system import build_panollava_system

__all__ = ["SYSTEM_BUILDERS", "build_system"]

# model.system (the config's discriminator) -> builder
SYSTEM_BUILDERS: dict[str, Callable[[PanoConfig, Path | None], System]] = {
    "panollava": build_panollava_system,
    "panoadapt": build_panoadapt_system,
}


def build_system(cfg: PanoConfig, run_dir: Path | None = None) -> System:
    """The System the engine trains and the predictor answers with.

    Seeds every RNG with ``cfg.seed`` first: the random init of the new parts (resampler,
    projector, tiny models) is part of the run, so the same config and seed give the same
    weights.
    """
    if cfg.model is None:
        raise ValueError("the config has no `model` section: nothing to build")
    seed_everything(cfg.seed, workers=True, verbose=False)
    return SYSTEM_BUILDERS[cfg.model.system](cfg, run_dir)
