"""Checkpoints of trainable weights only (safetensors): the frozen backbone is never written."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["load_trainable", "save_trainable", "trainable_state_dict"]


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters with ``requires_grad`` (plus nothing else), detached, contiguous, on CPU."""
    return {
        name: p.detach().to("cpu").contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def save_trainable(
    model: nn.Module, path: str | Path, *, extra: dict[str, str] | None = None
) -> Path:
    """Write the trainable parameters of ``model`` to a safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = trainable_state_dict(model)
    if not state:
        raise ValueError("model has no trainable parameters to save")
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=extra or {})
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint
    return path


def load_trainable(model: nn.Module, path: str | Path) -> list[str]:
    """Load weights saved by :func:`save_trainable`; every saved tensor must exist in ``model``.

    Returns the names loaded. Unknown names raise (a checkpoint from another architecture).
    """
    state = load_file(str(path))
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise KeyError(f"{path}: {len(unknown)} tensors not in the model, e.g. {unknown[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            if params[name].shape != tensor.shape:
                raise ValueError(
                    f"{path}: shape of {name} is {tuple(tensor.shape)}, model has "
                    f"{tuple(params[name].shape)}"
                )
            params[name].copy_(tensor)
    return sorted(state)
