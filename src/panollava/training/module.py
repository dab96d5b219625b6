"""The one LightningModule: wires a panorama model, its losses and the optimiser.

The science lives in plain modules. A model plugged in here implements
``step(batch) -> StepOutput`` (:mod:`panollava.models.base`) with the LM loss and, when an overlap loss is configured, the tile
features and their patch correspondences. The module adds ``weight * overlap`` to the LM loss.
Gradient accumulation divides the *total* loss uniformly, so the overlap weight's effect does not
depend on the accumulation factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from panollava.models.base import OverlapFn, StepOutput
from panollava.training.loader import ResumableLoader
from panollava.training.optim import build_optimizer, lr_lambda, param_groups

__all__ = ["NonFiniteLossError", "PanoModule", "TrainHParams"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the run stops instead of training on garbage."""


@dataclass
class TrainHParams:
    """Optimisation settings of one stage (filled from the stage config)."""

    lr: float
    total_steps: int
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    lm_weight: float = 1.0
    overlap_weight: float = 0.0
    precision: str = "32-true"


class PanoModule(pl.LightningModule):
    """LM loss + weighted overlap loss, AdamW + warmup/cosine, trainable-only checkpoints."""

    def __init__(
        self,
        model: nn.Module,
        hparams: TrainHParams,
        overlap_loss: OverlapFn | None = None,
        *,
        step0_check: Callable[[dict[str, Any]], None] | None = None,
        step0_batch: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.hp = hparams
        self.overlap_loss = overlap_loss
        self._step0 = (step0_check, step0_batch) if step0_check is not None else None
        if hparams.overlap_weight > 0 and overlap_loss is None:
            raise ValueError("overlap_weight > 0 but no overlap loss was configured")
        # Frozen backbone weights are not in our checkpoints; they come from the base model.
        self.strict_loading = False

    # ------------------------------------------------------------------ losses
    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss of a batch and its named parts (for logging)."""
        if self.hp.lm_weight <= 0 and "labels" in batch:  # no LM loss: the LLM need not run
            batch = {k: v for k, v in batch.items() if k != "labels"}
        out: StepOutput = self.model.step(batch)
        parts: dict[str, torch.Tensor] = dict(out.logs)
        total = torch.zeros((), device=self.device)
        if self.hp.lm_weight > 0:
            if out.lm_loss is None:
                raise ValueError(
                    "the stage has an LM loss weight but the model returned no LM loss"
                )
            parts["lm"] = out.lm_loss.detach()
            total = total + self.hp.lm_weight * out.lm_loss.float()
        if self.hp.overlap_weight > 0:
            if out.features is None or out.pairs is None:
                raise ValueError("overlap loss enabled but the model returned no tile features")
            ovl, ovl_parts = self.overlap_loss(out.features, out.pairs)
            parts.update({f"overlap/{k}": v.detach() for k, v in ovl_parts.items()})
            parts["overlap"] = ovl.detach()
            total = total + self.hp.overlap_weight * ovl
        if not torch.isfinite(total):
            hint = (
                " fp16 overflows easily with thousands of image tokens: use precision bf16-mixed."
                if "16" in self.hp.precision and "bf16" not in self.hp.precision
                else ""
            )
            shown = {k: float(v) for k, v in parts.items()}
            raise NonFiniteLossError(f"non-finite loss at step {self.global_step}: {shown}.{hint}")
        return total, parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, parts = self.compute_loss(batch)
        bs = _batch_size(batch)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=bs)
        for k, v in parts.items():
            self.log(f"train/{k}", v, batch_size=bs)
        # Count the batch as consumed now: checkpoint callbacks run before module hooks.
        loader = self.trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.consumed += 1
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, parts = self.compute_loss(batch)
        bs = _batch_size(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=bs, sync_dist=True)
        for k, v in parts.items():
            self.log(f"val/{k}", v, batch_size=bs, sync_dist=True)

    def on_train_start(self) -> None:
        """Train mode for the whole model (HF loaders return it in eval mode, which Lightning
        keeps: LoRA dropout and gradient checkpointing would silently stay off), then the step-0
        check (e.g. the dead-loss check) on the placed model, in the training dtype and
        autocast, on the small batch it was given (never a host-side fp32 pass)."""
        self.train()
        if self._step0 is None:
            return
        check, batch = self._step0
        self._step0 = None
        batch = self.trainer.strategy.batch_to_device(batch, self.device)
        with self.trainer.precision_plugin.forward_context():
            check(batch)
        self.model.zero_grad(set_to_none=True)

    # --------------------------------------------------------------- optimiser
    def configure_optimizers(self):
        hp = self.hp
        trainable = nn.ModuleDict({"model": self.model})
        if isinstance(self.overlap_loss, nn.Module):
            trainable["overlap_loss"] = self.overlap_loss
        groups = param_groups(trainable, hp.lr, hp.weight_decay, hp.lr_multipliers)
        optimizer = build_optimizer(groups)

        def schedule(step: int) -> float:
            return lr_lambda(
                step,
                total_steps=hp.total_steps,
                warmup_steps=hp.warmup_steps,
                kind=hp.schedule,
                min_ratio=hp.min_lr_ratio,
            )

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep only trainable tensors (and buffers of trainable modules) in the checkpoint."""
        keep = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["panollava_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        missing = trainable - set(checkpoint["state_dict"])
        if missing:
            raise KeyError(
                f"checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[:3]}: "
                "it was written for another stage or model"
            )
        # Applied at the first resumed batch: creating the data iterator draws from the global
        # RNG, which the uninterrupted run did before the checkpoint was taken.
        self._pending_rng = checkpoint.get("panollava_rng")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        rng = getattr(self, "_pending_rng", None)
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            self._pending_rng = None


def _batch_size(batch: dict[str, Any]) -> int:
    for key in ("input_ids", "pixel_values"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    return 1
