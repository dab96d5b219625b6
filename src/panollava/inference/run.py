"""The one way to load a ``panollava train`` run folder: config, System, finished stages.

``eval``, ``infer``, ``serve`` and ``export`` all go through :func:`load_run`::

    run = load_run("runs/tiny/20261201-120000")
    run.system.model  # every finished stage's weights applied, in stage order
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from panollava.config import PanoConfig, load_config, save_config
from panollava.models.base import System
from panollava.models.build import build_system
from panollava.training.checkpoint import load_trainable
from panollava.training.run import RunState

__all__ = ["LoadedRun", "RunNotTrainedError", "load_run"]

log = logging.getLogger(__name__)


class RunNotTrainedError(RuntimeError):
    """The run folder holds no finished stage, so there are no trained weights to answer with."""


@dataclass
class LoadedRun:
    """A run folder's config and System with its finished stages (``[]``: zero-shot)."""

    run_dir: Path
    cfg: PanoConfig
    system: System
    finished: list[str]

    @property
    def name(self) -> str:
        stages = ", ".join(self.finished) if self.finished else "none: untrained"
        return f"{self.cfg.experiment} ({self.run_dir.name}, stages: {stages})"


def load_run(
    run_dir: str | Path, cfg: PanoConfig | None = None, *, allow_untrained: bool = False
) -> LoadedRun:
    """Build the run's System and load every finished stage's trainable weights in order.

    ``cfg`` defaults to ``RUN/config.yaml``. A run with no finished stage raises
    :class:`RunNotTrainedError` unless ``allow_untrained`` (zero-shot evaluation), which logs it
    and saves the config into the folder so the evaluation stays reproducible.
    """
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if cfg is None:
        if not config.is_file():
            raise FileNotFoundError(
                f"{run_dir} is not a run folder (no config.yaml); pass the folder "
                "`panollava train` printed, e.g. runs/<experiment>/<timestamp>"
            )
        cfg = load_config(config)
    state = RunState.load(run_dir, [s.name for s in cfg.train.stages])
    finished = state.finished()
    if not finished:
        if not allow_untrained:
            raise RunNotTrainedError(
                f"{run_dir} has no finished stage (stages.json: "
                f"{[(r.name, r.status) for r in state.stages]}); finish training with "
                f"`panollava train {config} --run {run_dir} --resume`"
            )
        log.warning("%s has no finished stage: using the untrained model (zero-shot)", run_dir)
        if not config.exists():
            save_config(cfg, config)
    system = build_system(cfg, run_dir)
    for stage in cfg.train.stages:
        record = state.record(stage.name)
        if record.status == "done":
            system.configure_stage(stage)
            load_trainable(system.model, run_dir / record.weights)
    system.model.eval()
    return LoadedRun(run_dir, cfg, system, finished)
