"""Selective scan (Mamba S6) back ends for the ``bimamba`` resampler, chosen explicitly.

* ``mamba_ssm``: the fused CUDA kernel ``selective_scan_fn`` (CUDA tensors only);
* ``mambapy``: :func:`selective_scan_parallel`, the ``mambapy.pscan`` parallel (Blelloch) scan in
  plain PyTorch on any device, chunked with recomputation to bound memory;
* ``auto``: ``mamba_ssm`` when the input is on CUDA and the package is installed, else ``mambapy``.

Recurrence per channel ``e`` and state ``n`` (``A`` diagonal, negative)::

    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t,    y_t = C_t h_t + D x_t
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Literal

import torch
from mambapy.pscan import pscan
from torch.utils.checkpoint import checkpoint

__all__ = [
    "MambaBackend",
    "mamba_ssm_installed",
    "mamba_ssm_selective_scan",
    "resolve_mamba_backend",
    "selective_scan_parallel",
]

MambaBackend = Literal["auto", "mambapy", "mamba_ssm"]


@functools.cache
def mamba_ssm_selective_scan() -> Callable[..., torch.Tensor]:
    """The CUDA ``selective_scan_fn``; ImportError (with the fix) when mamba-ssm is missing."""
    try:
        from mamba_ssm.ops.selective_scan_interface import (  # optional back end (CUDA)
            selective_scan_fn,
        )
    except ImportError as exc:
        raise ImportError(
            "resampler backend 'mamba_ssm' needs the mamba-ssm package with its CUDA kernels "
            f"({exc}); install mamba-ssm or set resampler.backend to 'mambapy'"
        ) from exc
    return selective_scan_fn


def mamba_ssm_installed() -> bool:
    """Whether a ``mamba_ssm`` package is present (importing it may still fail)."""
    return importlib.util.find_spec("mamba_ssm") is not None


def resolve_mamba_backend(
    requested: MambaBackend, device: torch.device
) -> tuple[Literal["mambapy", "mamba_ssm"], str]:
    """Pick the scan back end for tensors on ``device``; returns ``(backend, reason)``.

    ``auto`` picks ``mamba_ssm`` only on CUDA with the package installed; an installed but
    broken mamba-ssm raises instead of falling back. Explicit ``mamba_ssm`` off CUDA raises.
    """
    if requested == "mambapy":
        return "mambapy", "requested explicitly"
    if requested == "mamba_ssm":
        if device.type != "cuda":
            raise RuntimeError(
                f"resampler backend 'mamba_ssm' runs on CUDA only, but the input is on "
                f"{device}; set resampler.backend to 'mambapy' or 'auto'"
            )
        mamba_ssm_selective_scan()
        return "mamba_ssm", "requested explicitly"
    if requested != "auto":
        raise ValueError(f"unknown mamba backend {requested!r}: use auto, mambapy or mamba_ssm")
    if device.type != "cuda":
        return "mambapy", f"auto: input on {device.type}, mamba_ssm kernels need CUDA"
    if not mamba_ssm_installed():
        return "mambapy", "auto: mamba_ssm is not installed"
    mamba_ssm_selective_scan()  # installed but broken -> raise, never a silent fallback
    return "mamba_ssm", "auto: CUDA input and mamba_ssm installed"


def _scan_chunk(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h0: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scan ``c`` steps from state ``h0 (b, E, N)`` (``None``: zeros).

    Returns ``C_t h_t (b, c, E)`` (without the ``D`` skip) and the last state ``(b, E, N)``.
    """
    delta_a = torch.exp(delta.unsqueeze(-1) * A)  # (b, c, E, N)
    delta_b_u = delta.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)  # (b, c, E, N)
    if h0 is not None:  # h_0 = exp(Δ_0 A) h0 + Δ_0 B_0 u_0: fold the carried state into step 0
        first = delta_b_u[:, :1] + delta_a[:, :1] * h0.unsqueeze(1)  # (b, 1, E, N)
        delta_b_u = torch.cat([first, delta_b_u[:, 1:]], dim=1)
    hs = pscan(delta_a, delta_b_u)  # (b, c, E, N): h_t for every t
    # clone: a view would keep the whole chunk's hs alive for as long as the state is used
    return (hs @ C.unsqueeze(-1)).squeeze(-1), hs[:, -1].clone()


def selective_scan_parallel(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Selective scan with ``mambapy.pscan``, computed in at least float32.

    The parallel scan materialises ``(b, L, E, N)`` tensors. With ``chunk_size`` the sequence
    is scanned ``chunk_size`` steps at a time (state carried across chunks) and, when gradients
    are needed, each chunk is recomputed in backward instead of stored, so activation memory is
    ``O(b·L·E)`` plus one chunk's ``(b, chunk, E, N)``.

    Args:
        u, delta: ``(b, L, E)`` input and (already softplus-ed) step sizes.
        A: ``(E, N)`` negative state matrix (diagonal per channel).
        B, C: ``(b, L, N)`` input-dependent input / output projections.
        D: ``(E,)`` skip weights.
        chunk_size: steps per chunk; ``None``: the whole sequence in one parallel scan.

    Returns:
        ``y (b, L, E)`` in ``u.dtype``.
    """
    dtype = torch.promote_types(u.dtype, torch.float32)
    # Autocast off: the h_t @ C_t product must not drop to bf16 (and copy hs to do so).
    with torch.autocast(device_type=u.device.type, enabled=False):
        u_, delta_, A_, B_, C_ = (t.to(dtype) for t in (u, delta, A, B, C))
        if chunk_size is None or chunk_size >= u.shape[1]:
            y, _ = _scan_chunk(u_, delta_, A_, B_, C_, None)  # (b, L, E)
        else:
            y = _chunked_scan(u_, delta_, A_, B_, C_, chunk_size)  # (b, L, E)
        return (y + D.to(dtype) * u_).to(u.dtype)


def _chunked_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    """``C_t h_t (b, L, E)`` chunk by chunk, each chunk recomputed in backward when training."""
    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    h: torch.Tensor | None = None  # (b, E, N) state carried between chunks
    ys = []
    for s in range(0, u.shape[1], chunk_size):
        u_c, delta_c, b_c, c_c = (t[:, s : s + chunk_size] for t in (u, delta, B, C))
        if recompute:
            y_c, h = checkpoint(_scan_chunk, u_c, delta_c, A, b_c, c_c, h, use_reentrant=False)
        else:
            y_c, h = _scan_chunk(u_c, delta_c, A, b_c, c_c, h)
        ys.append(y_c)  # (b, c, E)
    return torch.cat(ys, dim=1)
