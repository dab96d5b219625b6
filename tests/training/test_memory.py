"""Memory settings of training: gradient checkpointing, pure bf16, and the placed step-0 check."""

import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pydantic import ValidationError
from transformers.modeling_layers import GradientCheckpointingLayer

from panollava.config import PanoConfig
from panollava.models.adapters.families import get_family, resolve_module
from panollava.models.adapters.tiny import build_tiny
from panollava.models.base import StepOutput
from panollava.models.lora import apply_lora
from panollava.training.memory import apply_memory_settings, cast_frozen
from panollava.training.module import PanoModule, TrainHParams
from panollava.training.schema import LoraSettings, TrainConfig
from panollava.training.trainer import run_training

sys.path.insert(0, str(Path(__file__).parent))
from toy_system import ToySystem, toy_config


def _layers(module):
    return [m for m in module.modules() if isinstance(m, GradientCheckpointingLayer)]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "gemma3"])
def test_gradient_checkpointing_flag_enables_it_in_both_towers(family):
    model, _ = build_tiny(family)
    facts = get_family(family)
    model = apply_lora(model, LoraSettings(targets=["language", "vision"]), facts.lora_groups)
    enabled = apply_memory_settings(model, TrainConfig(gradient_checkpointing=True), "32-true")
    assert enabled  # names the HF models it switched
    base = model.base_model.model
    for part in (facts.language_model, facts.vision_tower):
        layers = _layers(resolve_module(base, part))
        assert layers and all(m.gradient_checkpointing for m in layers), part


def test_gradient_checkpointing_without_hf_model_is_refused():
    system = ToySystem()
    with pytest.raises(ValueError, match="gradient_checkpointing"):
        apply_memory_settings(system.model, TrainConfig(gradient_checkpointing=True), "32-true")


def test_pure_bf16_keeps_trainable_params_and_optimizer_state_fp32():
    model, _ = build_tiny("qwen2_5_vl")
    model = apply_lora(
        model, LoraSettings(targets=["language"]), get_family("qwen2_5_vl").lora_groups
    )
    cast = cast_frozen(model, torch.bfloat16)
    assert cast > 0
    frozen = [p for p in model.parameters() if not p.requires_grad]
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    assert lora and all(p.requires_grad and p.dtype == torch.float32 for p in lora)
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    opt = torch.optim.AdamW(lora, lr=1e-3)
    for p in lora:
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(opt.state[p]["exp_avg"].dtype == torch.float32 for p in lora)


def test_pure_bf16_is_a_precision_and_needs_a_gpu():
    from panollava.training.engine import resolve_precision

    assert TrainConfig(precision="bf16-pure").precision == "bf16-pure"
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_precision(TrainConfig(precision="bf16-pure", accelerator="cpu"))
    with pytest.raises(ValidationError):
        TrainConfig(precision="bf16-everything")


class _Recorder(ToySystem):
    def __init__(self):
        super().__init__()
        self.seen = []

    def check_stage(self, stage, batch):
        w = self.model.encoder.weight
        self.seen.append((stage.name, batch["x"].shape[0], w.dtype, w.device.type))


def test_step0_check_runs_on_one_sample(tmp_path):
    system = _Recorder()
    run_training(toy_config(tmp_path), system)
    assert [s[:2] for s in system.seen] == [("encoder", 1), ("head", 1)]  # batch_size is 4


def test_step0_check_runs_after_placement_in_the_training_dtype(tmp_path):
    # bf16-true on CPU: Lightning converts the module at setup; a check before fit saw fp32.
    system = _Recorder()
    cfg: PanoConfig = toy_config(tmp_path)
    stage = cfg.train.stages[0]
    system.configure_stage(stage)
    hp = TrainHParams(lr=0.01, total_steps=1, precision="bf16-true")
    batch = system.collate(stage)(system.data[:1])
    module = PanoModule(
        system.model, hp, step0_check=lambda b: system.check_stage(stage, b), step0_batch=batch
    )
    loader = torch.utils.data.DataLoader(
        system.data, batch_size=4, collate_fn=system.collate(stage)
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        precision="bf16-true",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, loader)
    assert system.seen == [("encoder", 1, torch.bfloat16, "cpu")]


def test_training_runs_in_train_mode_although_loaders_return_eval_mode(tmp_path):
    # HF loaders return models in eval mode and Lightning keeps module modes: without train mode,
    # LoRA dropout and HF gradient checkpointing (`if self.gradient_checkpointing and
    # self.training`) silently do nothing.
    system = ToySystem()
    seen = []
    step = system.model.step

    def recording_step(batch):
        seen.append(system.model.encoder.training)
        return step(batch)

    system.model.step = recording_step
    system.model.eval()
    run_training(toy_config(tmp_path), system, stages=["encoder"])
    assert seen and all(seen)


def test_a_stage_without_lm_loss_does_not_compute_it():
    """An overlap-only stage (lm_weight 0, e.g. PanoLLaVA's `vision` stage) must not run the
    LLM: its forward would hold a full sequence of activations for a loss nobody uses."""
    seen = []

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def step(self, batch):
            seen.append("labels" in batch)
            feats = self.w * torch.ones(1, 2, 1, 1)
            lm = self.w * 2.0 if "labels" in batch else None
            return StepOutput(lm_loss=lm, features=feats, pairs=[()])

    overlap = lambda feats, pairs: (feats.sum(), {})  # noqa: E731
    batch = {"labels": torch.zeros(1, 3, dtype=torch.long), "pixel_values": torch.zeros(1)}
    hp = TrainHParams(lr=0.1, total_steps=1, lm_weight=0.0, overlap_weight=1.0)
    loss, parts = PanoModule(Model(), hp, overlap).compute_loss(batch)
    assert seen == [False] and "lm" not in parts and float(loss) == 2.0
    hp = TrainHParams(lr=0.1, total_steps=1, lm_weight=1.0, overlap_weight=1.0)
    loss, parts = PanoModule(Model(), hp, overlap).compute_loss(batch)
    assert seen == [False, True] and float(loss) == 4.0
