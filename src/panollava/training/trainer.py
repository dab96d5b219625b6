"""``run_training``: the stage plan of one YAML, executed by the one Lightning engine.

Each stage starts from the weights of every finished stage before it; a run folder records
finished stages (``stages.json``) and resumes mid-stage from ``<stage>/last.ckpt``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from panollava.config import PanoConfig, save_config
from panollava.data.datasets import build_dataset
from panollava.models.base import System
from panollava.training.checkpoint import load_trainable, save_trainable
from panollava.training.engine import build_trainer, resolve_precision
from panollava.training.loader import ResumableLoader
from panollava.training.memory import apply_memory_settings
from panollava.training.module import PanoModule, TrainHParams
from panollava.training.run import RunState, find_latest_run, new_run_dir, resume_checkpoint
from panollava.training.schema import StageConfig

__all__ = ["preflight", "run_training"]

log = logging.getLogger(__name__)

_RUN_DIR_ENV = "PANOLLAVA_RUN_DIR"


def _launched_rank() -> int:
    """Global rank of this process as set by a distributed launcher (0 when not launched)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def _stage_steps(stage: StageConfig, num_samples: int, world_size: int) -> int:
    """Optimiser steps of a stage: ``max_steps``, or epochs over this rank's share of the data."""
    if stage.max_steps is not None:
        return stage.max_steps
    per_rank = math.ceil(num_samples / world_size)
    batches = math.ceil(per_rank / stage.batch_size)
    return max(1, math.ceil(batches / stage.accumulate)) * (stage.epochs or 1)


def _world_size(cfg: PanoConfig) -> int:
    train = cfg.train
    if train.strategy == "auto" or not isinstance(train.devices, int):
        return 1
    return train.devices


def _hparams(stage: StageConfig, total_steps: int, precision: str) -> TrainHParams:
    return TrainHParams(
        lr=stage.lr,
        total_steps=total_steps,
        warmup_steps=int(stage.warmup_ratio * total_steps),
        schedule=stage.schedule,
        weight_decay=stage.weight_decay,
        lr_multipliers=dict(stage.lr_multipliers),
        lm_weight=stage.lm_weight,
        overlap_weight=stage.overlap_weight,
        precision=precision,
    )


def _loaders(
    system: System, stage: StageConfig, cfg: PanoConfig
) -> tuple[DataLoader, DataLoader | None]:
    collate = system.collate(stage)
    train = ResumableLoader(
        system.dataset(stage.train_split, stage),
        batch_size=stage.batch_size,
        seed=cfg.seed,
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
    )
    val = None
    if stage.valid_split and getattr(cfg.data, stage.valid_split, None):
        val = DataLoader(
            system.dataset(stage.valid_split, stage),
            batch_size=stage.batch_size,
            collate_fn=collate,
            num_workers=cfg.train.num_workers,
        )
    return train, val


def _stage_names(cfg: PanoConfig, selected: list[str] | None) -> list[str]:
    """The config's stage names; refuses an empty plan or unknown ``selected`` names."""
    names = [s.name for s in cfg.train.stages]
    if not names:
        raise ValueError("train.stages is empty: nothing to train")
    unknown = sorted(set(selected or []) - set(names))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; this config defines {names}")
    return names


def preflight(
    cfg: PanoConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    stages: list[str] | None = None,
) -> Path | None:
    """What ``train`` checks before any model loads: stage names, the precision on this machine,
    every table and image the stages read (``data.check_images``), and, for ``resume``, that
    there is a run to continue.

    Returns the run folder to use (None: a new one). Creates nothing, so a refused run leaves
    no empty folder behind.
    """
    _stage_names(cfg, stages)
    if run_dir is None and resume:
        run_dir = find_latest_run(cfg)
    splits = {s.train_split for s in cfg.train.stages}
    splits |= {s.valid_split for s in cfg.train.stages if s.valid_split and cfg.data.valid}
    for split in sorted(splits):
        build_dataset(cfg, split, mode="train")  # raises DataError naming rows and the fix
    resolve_precision(cfg.train)  # a GPU precision on a CPU machine (fp16: refused by the config)
    return run_dir


def run_training(
    cfg: PanoConfig,
    system: System,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    stages: list[str] | None = None,
) -> Path:
    """Train the stages of ``cfg`` (or the named subset) and return the run folder."""
    names = _stage_names(cfg, stages)
    if run_dir is None and _launched_rank() > 0:
        run_dir = Path(os.environ[_RUN_DIR_ENV])  # a DDP child: same folder as rank 0
    if run_dir is None:
        run_dir = find_latest_run(cfg) if resume else new_run_dir(cfg)
    elif not (run_dir / "config.yaml").exists() and _launched_rank() == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    # Lightning's DDP launcher re-runs this program for ranks > 0; they must find this folder.
    os.environ[_RUN_DIR_ENV] = str(run_dir)
    state = RunState.load(run_dir, names)
    state.writable = _launched_rank() == 0
    state.save()
    precision = resolve_precision(cfg.train, allow_fp16=system.allow_fp16)
    for stage in cfg.train.stages:
        record = state.record(stage.name)
        if record.status != "done" and stages is not None and stage.name not in stages:
            log.info("stage %s skipped (not selected)", stage.name)
            continue
        system.configure_stage(stage)  # structure (e.g. LoRA) first, then weights
        if record.status == "done":
            load_trainable(system.model, run_dir / record.weights)
            log.info("stage %s already finished: loaded %s", stage.name, record.weights)
            continue
        _run_stage(cfg, system, stage, state, run_dir, precision)
    return run_dir


def _run_stage(
    cfg: PanoConfig,
    system: System,
    stage: StageConfig,
    state: RunState,
    run_dir: Path,
    precision: str,
) -> None:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    stage_dir = run_dir / stage.name
    stage_dir.mkdir(exist_ok=True)
    train_loader, val_loader = _loaders(system, stage, cfg)
    total = _stage_steps(stage, len(train_loader.dataset), _world_size(cfg))
    apply_memory_settings(system.model, cfg.train, precision)
    module = PanoModule(
        system.model,
        _hparams(stage, total, precision),
        system.overlap_loss(),
        step0_check=functools.partial(system.check_stage, stage),
        step0_batch=train_loader.collate_fn([train_loader.dataset[0]]),  # the smallest batch
    )
    trainer = build_trainer(
        cfg.train,
        stage,
        stage_dir,
        run_dir / "logs",
        max_steps=total,
        precision=precision,
        enable_validation=val_loader is not None,
    )
    ckpt = resume_checkpoint(stage_dir)
    record = state.record(stage.name)
    record.status = "running"
    state.save()
    t0 = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt) if ckpt else None)
    weights = stage_dir / "weights.safetensors"
    if trainer.is_global_zero:
        save_trainable(system.model, weights)
    record.status, record.steps = "done", trainer.global_step
    record.weights = str(weights.relative_to(run_dir))
    record.seconds += time.perf_counter() - t0
    state.save()
