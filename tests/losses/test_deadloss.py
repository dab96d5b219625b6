"""The dead-loss check on tiny models."""

import pytest
import torch
from torch import nn

from panollava.losses import DeadLossError, check_loss_reaches_trainable


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision = nn.Linear(4, 4)
        self.text = nn.Linear(4, 4)

    def forward(self, x):
        return self.vision(x)  # the loss depends on `vision` only


def test_fails_when_trainable_parameters_are_off_the_loss_path():
    m = Tiny()
    m.vision.requires_grad_(False)
    with pytest.raises(DeadLossError, match="reaches no trainable"):
        check_loss_reaches_trainable(m, m(torch.randn(2, 4)).pow(2).mean())


def test_passes_when_on_the_path_and_reports_groups():
    m = Tiny()
    reached = check_loss_reaches_trainable(m, m(torch.randn(2, 4)).pow(2).mean())
    assert reached == {"vision": 20}


def test_hint_names_the_fused_qkv():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(4, 12)
            self.proj = nn.Linear(4, 4)

    class Lora(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Linear(4, 4)
            self.lora_A = nn.Linear(4, 2)

    model = nn.Module()
    model.visual = nn.Module()
    model.visual.attn = Attn()
    model.text = nn.Module()
    model.text.q_proj = Lora()
    model.requires_grad_(False)
    model.text.q_proj.lora_A.requires_grad_(True)
    feats = model.visual.attn.qkv(torch.randn(2, 4))
    with pytest.raises(DeadLossError, match=r"attn\.qkv"):
        check_loss_reaches_trainable(
            model, feats.pow(2).mean() + 0 * model.visual.attn.qkv.weight.sum()
        )


def test_check_frees_the_graph_of_the_loss():
    # The step-0 check must not keep a real step's activations alive into training.
    m = torch.nn.Linear(4, 1)
    loss = m(torch.randn(2, 4)).pow(2).mean()
    check_loss_reaches_trainable(m, loss)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()
