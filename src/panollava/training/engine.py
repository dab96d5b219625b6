"""Building the Lightning ``Trainer`` of a stage from the typed config."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.strategies import DDPStrategy

from panollava.training.memory import lightning_precision
from panollava.training.progress import StepProgress
from panollava.training.schema import StageConfig, TrainConfig

__all__ = ["build_trainer", "resolve_precision"]

log = logging.getLogger(__name__)


def resolve_precision(train: TrainConfig, *, allow_fp16: bool = True) -> str:
    """``auto`` -> ``bf16-mixed`` on CUDA, ``32-true`` on CPU. fp16 refused where unsafe."""
    precision = train.precision
    on_gpu = train.accelerator == "gpu" or (
        train.accelerator == "auto" and torch.cuda.is_available()
    )
    if precision == "auto":
        precision = "bf16-mixed" if on_gpu else "32-true"
    if precision.startswith("16") and not allow_fp16:
        raise ValueError(
            "this model family is bf16-only: fp16 overflows with thousands of image tokens "
            "(loss 0, NaN gradients). Set train.precision: bf16-mixed"
        )
    if not on_gpu and precision != "32-true":
        raise ValueError(
            f"precision {precision} needs a GPU; on CPU set train.precision=32-true (or auto)"
        )
    return precision


def _loggers(train: TrainConfig, logs_dir: Path, stage: StageConfig) -> list:
    loggers: list = [CSVLogger(str(logs_dir), name=stage.name, version="")]
    if "tensorboard" in train.loggers:
        loggers.append(TensorBoardLogger(str(logs_dir), name=f"tb_{stage.name}", version=""))
    if "wandb" in train.loggers:
        from pytorch_lightning.loggers import WandbLogger  # optional back end (wandb)

        loggers.append(WandbLogger(name=stage.name, save_dir=str(logs_dir)))
    return loggers


def _strategy(train: TrainConfig):
    if train.strategy.startswith("deepspeed"):
        return train.strategy  # Lightning resolves the registered deepspeed strategies by name
    if train.strategy == "ddp" and not torch.cuda.is_available():
        return DDPStrategy(process_group_backend="gloo")
    return train.strategy


def build_trainer(
    train: TrainConfig,
    stage: StageConfig,
    stage_dir: Path,
    logs_dir: Path,
    *,
    max_steps: int,
    precision: str,
    enable_validation: bool,
) -> pl.Trainer:
    """A Trainer that runs ``max_steps`` optimiser steps of ``stage`` and checkpoints to ``stage_dir``."""
    checkpoint = ModelCheckpoint(
        dirpath=str(stage_dir),
        filename="step{step}",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=train.checkpoint_every_n_steps,
        save_on_train_epoch_end=True,
    )
    callbacks: list = [checkpoint, StepProgress(stage.name, max_steps, train.progress_every_s)]
    return pl.Trainer(
        accelerator=train.accelerator,
        devices=train.devices,
        strategy=_strategy(train),
        precision=lightning_precision(precision),
        max_steps=max_steps,
        max_epochs=-1,
        accumulate_grad_batches=stage.accumulate,
        gradient_clip_val=train.grad_clip,
        deterministic=train.deterministic,
        logger=_loggers(train, logs_dir, stage),
        log_every_n_steps=train.log_every_n_steps,
        callbacks=callbacks,
        enable_progress_bar=False,  # StepProgress reports, in terminals and logs alike
        enable_model_summary=False,
        limit_val_batches=1.0 if enable_validation else 0,
        val_check_interval=train.val_check_interval,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # our SeededSampler shards by rank itself (resumable)
        default_root_dir=str(stage_dir),
    )
