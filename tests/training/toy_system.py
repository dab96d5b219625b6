"""A toy System for engine tests: a 2-part regression model with named stages (no HF models).

Run as a script to train (used by the kill test): ``python toy_system.py RUN_DIR [--resume]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

from panollava.config import PanoConfig
from panollava.models.base import StepOutput
from panollava.training.schema import StageConfig, TrainConfig
from panollava.training.trainer import run_training


class ToyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(8, 16)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(16, 1))
        self.delay = 0.0

    def step(self, batch) -> StepOutput:
        if self.delay:
            time.sleep(self.delay)
        pred = self.head(torch.tanh(self.encoder(batch["x"])))
        return StepOutput(lm_loss=nn.functional.mse_loss(pred, batch["y"]))


class ToySystem:
    allow_fp16 = True

    def __init__(self, n: int = 64) -> None:
        self.model = ToyModel()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(n, 8, generator=g)
        y = (x[:, :1] * 2 - x[:, 1:2]).tanh()
        self.data = [{"x": x[k], "y": y[k]} for k in range(n)]

    def configure_stage(self, stage: StageConfig) -> None:
        self.model.requires_grad_(False)
        for name in stage.trainable:
            getattr(self.model, name).requires_grad_(True)

    def dataset(self, split, stage):
        return self.data if split == "train" else self.data[:8]

    def collate(self, stage):
        return lambda items: {k: torch.stack([it[k] for it in items]) for k in items[0]}

    def overlap_loss(self):
        return None

    def check_stage(self, stage, batch) -> None:
        assert batch["x"].shape[1] == 8


def toy_config(out: Path, *, every: int = 2, ddp: bool = False) -> PanoConfig:
    stages = [
        StageConfig(
            name="encoder",
            trainable=["encoder"],
            lr=0.05,
            batch_size=4,
            max_steps=6,
            accumulate=2,
            valid_split=None,
            warmup_ratio=0.0,
        ),
        StageConfig(
            name="head",
            trainable=["head"],
            lr=0.05,
            batch_size=4,
            epochs=1,
            valid_split=None,
            warmup_ratio=0.2,
        ),
    ]
    train = TrainConfig(
        accelerator="cpu",
        devices=2 if ddp else 1,
        strategy="ddp" if ddp else "auto",
        stages=stages,
        checkpoint_every_n_steps=every,
        log_every_n_steps=1,
    )
    return PanoConfig(experiment="toy", output_dir=out, train=train)


if __name__ == "__main__":
    run_dir = Path(sys.argv[1])
    system = ToySystem()
    ddp = "--ddp" in sys.argv
    args = [a for a in sys.argv[2:] if a != "--ddp"]
    system.model.delay = float(args[0]) if args else 0.0
    run_dir.mkdir(parents=True, exist_ok=True)
    run_training(toy_config(run_dir.parent, ddp=ddp), system, run_dir=run_dir, resume=True)
