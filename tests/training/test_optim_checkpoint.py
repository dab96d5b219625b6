import math

import pytest
import torch
from torch import nn

from panollava.training.checkpoint import load_trainable, save_trainable, trainable_state_dict
from panollava.training.optim import lr_lambda, param_groups


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.head = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.backbone.requires_grad_(False)


def test_param_groups_multipliers_and_no_decay():
    m = Tiny()
    groups = param_groups(m, lr=1e-3, weight_decay=0.1, lr_multipliers={"head.0": 10.0})
    by_name = {g["name"]: g for g in groups}
    assert by_name["head.0"]["lr"] == pytest.approx(1e-2)
    assert by_name["head.0"]["weight_decay"] == 0.1
    assert by_name["head.0/no_decay"]["weight_decay"] == 0.0  # bias
    assert by_name["default/no_decay"]["lr"] == pytest.approx(1e-3)  # LayerNorm
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == 4  # the frozen backbone is not optimised


def test_param_groups_refuse_nothing_trainable():
    m = Tiny().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(m, 1e-3, 0.0)


def test_lr_schedule_warmup_then_cosine_and_linear():
    kw = {"total_steps": 110, "warmup_steps": 10}
    assert lr_lambda(0, **kw) == pytest.approx(0.1)
    assert lr_lambda(9, **kw) == pytest.approx(1.0)
    assert lr_lambda(60, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_lambda(110, **kw) == pytest.approx(0.0)
    assert lr_lambda(60, **kw, kind="linear") == pytest.approx(0.5)
    assert lr_lambda(110, **kw, min_ratio=0.1) == pytest.approx(0.1)


def test_checkpoint_holds_trainable_weights_only(tmp_path):
    m = Tiny()
    path = save_trainable(m, tmp_path / "w.safetensors")
    assert set(trainable_state_dict(m)) == {
        "head.0.weight",
        "head.0.bias",
        "head.1.weight",
        "head.1.bias",
    }
    other = Tiny()
    loaded = load_trainable(other, path)
    assert len(loaded) == 4
    assert torch.equal(other.head[0].weight, m.head[0].weight)
    assert not torch.equal(other.backbone.weight, m.backbone.weight)  # untouched


def test_checkpoint_rejects_foreign_tensors(tmp_path):
    path = save_trainable(Tiny(), tmp_path / "w.safetensors")
    with pytest.raises(KeyError, match="not in the model"):
        load_trainable(nn.Linear(4, 4), path)


def test_precision_policy():
    from panollava.training.engine import resolve_precision
    from panollava.training.schema import TrainConfig

    assert resolve_precision(TrainConfig(accelerator="cpu")) == "32-true"
    with pytest.raises(ValueError, match="bf16-only"):
        resolve_precision(TrainConfig(accelerator="gpu", precision="16-mixed"), allow_fp16=False)
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_precision(TrainConfig(accelerator="cpu", precision="bf16-mixed"))


def test_non_finite_loss_stops_with_a_bf16_hint():
    from panollava.models.base import StepOutput
    from panollava.training.module import NonFiniteLossError, PanoModule, TrainHParams

    class NaNModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def step(self, batch):
            return StepOutput(lm_loss=self.w * float("nan"))

    module = PanoModule(NaNModel(), TrainHParams(lr=1e-3, total_steps=1, precision="16-mixed"))
    with pytest.raises(NonFiniteLossError, match="bf16-mixed"):
        module.compute_loss({})
