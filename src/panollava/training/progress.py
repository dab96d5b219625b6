"""Training progress for terminals and logs alike: steps done of the stage, loss, lr, it/s, ETA
(:class:`panollava.progress.ProgressReporter`), in place of Lightning's terminal-only bar."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from panollava.progress import ProgressReporter

__all__ = ["StepProgress"]


class StepProgress(pl.Callback):
    """Reports optimiser steps ``done/max_steps`` of one stage (resumed steps count as done)."""

    def __init__(self, stage: str, max_steps: int, every_s: float = 30.0) -> None:
        self.stage, self.max_steps, self.every_s = stage, max_steps, every_s
        self.reporter: ProgressReporter | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.reporter = ProgressReporter(
                f"train {self.stage}",
                self.max_steps,
                "steps",
                start=trainer.global_step,
                every_s=self.every_s,
            )

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.reporter is None:
            return
        fields: dict[str, float] = {}
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            fields["loss"] = float(loss.detach())
        if trainer.optimizers:
            fields["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.reporter.update(trainer.global_step, **fields)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.reporter is not None:
            self.reporter.close()
            self.reporter = None
