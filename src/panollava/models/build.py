"""``build_system(cfg)``: the :class:`~panollava.models.base.System` of the config's model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
    """The System the engine trains and the predictor answers with."""
    if cfg.model is None:
        raise ValueError("the config has no `model` section: nothing to build")
    return SYSTEM_BUILDERS[cfg.model.system](cfg, run_dir)
