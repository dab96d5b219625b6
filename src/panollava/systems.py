"""``build_system(cfg)``: the training System for the config's model (PanoLLaVA or PanoAdapt)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import seed_everything

from panollava.config import PanoConfig

__all__ = ["build_system"]


def build_system(cfg: PanoConfig, run_dir: Path | None = None):
    """The System the engine trains (see ``panollava.training.trainer.System``).

    Seeds every RNG with ``cfg.seed`` first: the random init of the new parts (resampler,
    projector, tiny models) is part of the run, so the same config and seed give the same
    weights.
    """
    if cfg.model is None:
        raise ValueError("the config has no `model` section: nothing to train")
    seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.model.system == "panollava":
        from panollava.models.panollava.system import build_panollava_system

        return build_panollava_system(cfg, run_dir)
    from panollava.models.adapters.system import build_panoadapt_system

    return build_panoadapt_system(cfg, run_dir)
