"""``bimamba`` resampler: bidirectional Mamba blocks scanning a view's patches in raster order.

Each block runs a forward Mamba mixer on the sequence and a second mixer on the reversed sequence
and averages them (pre-norm, residual), so every output token sees the whole view. Tokens and
grid are kept.

The mixer follows ``mamba_ssm.Mamba`` (same parameter names and initialisation, so one state dict
serves both back ends) and runs the selective scan on ``mamba_ssm`` (fused CUDA kernel) or
``mambapy`` (pure PyTorch, any device; slower and memory-hungrier on GPU), see
:mod:`~panollava.models.panollava.resamplers.selective_scan`. ``backend="auto"`` picks per device;
the choice is logged (a warning when mambapy runs on a GPU).

Mixer, with ``Δ = softplus(dt_proj(x) + bias)``::

    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t,    y_t = C_t h_t + D x_t,    out = y * silu(z)
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from panollava.models.panollava.resamplers import selective_scan
from panollava.models.panollava.resamplers.base import Grid, Resampler
from panollava.models.panollava.resamplers.selective_scan import (
    MambaBackend,
    resolve_mamba_backend,
    selective_scan_parallel,
)

__all__ = ["BiMambaBlock", "BiMambaResampler", "MambaMixer"]

logger = logging.getLogger(__name__)


class MambaMixer(nn.Module):
    """One Mamba (S6) mixer, parameters laid out as in ``mamba_ssm.Mamba``.

    ``forward(x (b, L, d_model), backend=...) -> (b, L, d_model)``, causal along ``L``.
    """

    def __init__(
        self,
        d_model: int,
        *,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        scan_chunk: int | None = 32,
    ) -> None:
        super().__init__()
        self.scan_chunk = scan_chunk
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        # Δ init: weights U(±rank^-½); bias = softplus⁻¹(dt) with dt log-uniform in [dt_min, dt_max].
        bound = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # S4D-real init: A = -[1..N] per channel, stored as log for positivity.
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))  # (E, N)
        self.D = nn.Parameter(torch.ones(self.d_inner))  # (E,)

    def forward(self, x: torch.Tensor, *, backend: Literal["mambapy", "mamba_ssm"]) -> torch.Tensor:
        """``x (b, L, d_model) -> (b, L, d_model)`` with an already resolved ``backend``."""
        seq_len = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (b, L, E) each
        u = self.conv1d(u.transpose(1, 2))[..., :seq_len]  # (b, E, L), causal depthwise conv
        u = F.silu(u)  # (b, E, L)
        dt, B, C = self.x_proj(u.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1
        )  # (b, L, R), (b, L, N), (b, L, N)
        delta = dt @ self.dt_proj.weight.t()  # (b, L, E), bias added with the softplus
        a_dtype = torch.promote_types(self.A_log.dtype, torch.float32)  # >= fp32 (kernel: fp32)
        A = -torch.exp(self.A_log.to(a_dtype))  # (E, N)
        if backend == "mamba_ssm":
            y = selective_scan.mamba_ssm_selective_scan()(
                u,  # (b, E, L)
                delta.transpose(1, 2),  # (b, E, L)
                A,
                B.transpose(1, 2),  # (b, N, L)
                C.transpose(1, 2),  # (b, N, L)
                self.D.float(),
                z=z.transpose(1, 2),  # (b, E, L); kernel returns y * silu(z)
                delta_bias=self.dt_proj.bias.float(),
                delta_softplus=True,
            ).transpose(1, 2)  # (b, L, E)
        else:
            delta = F.softplus(delta + self.dt_proj.bias)  # (b, L, E)
            y = selective_scan_parallel(
                u.transpose(1, 2), delta, A, B, C, self.D, chunk_size=self.scan_chunk
            )  # (b, L, E)
            y = y * F.silu(z)
        return self.out_proj(y)


class BiMambaBlock(nn.Module):
    """Pre-norm residual block: ``x + drop(½·(fwd(LN x) + flip(bwd(flip(LN x)))))``, ``(b, L, d)``."""

    def __init__(
        self,
        d_model: int,
        *,
        d_state: int,
        d_conv: int,
        expand: int,
        scan_chunk: int | None = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = {"d_state": d_state, "d_conv": d_conv, "expand": expand, "scan_chunk": scan_chunk}
        self.norm = nn.LayerNorm(d_model)
        self.forward_mixer = MambaMixer(d_model, **sizes)
        self.backward_mixer = MambaMixer(d_model, **sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *, backend: Literal["mambapy", "mamba_ssm"]) -> torch.Tensor:
        h = self.norm(x)  # (b, L, d)
        fwd = self.forward_mixer(h, backend=backend)  # (b, L, d)
        bwd = self.backward_mixer(h.flip(1), backend=backend).flip(1)  # (b, L, d)
        return x + self.dropout(0.5 * (fwd + bwd))


class BiMambaResampler(Resampler):
    """``Linear(D_in, d) -> depth × BiMambaBlock -> LayerNorm -> Linear(d, D_out)``.

    ``(B*V, gh*gw, D_in) -> (B*V, gh*gw, D_out)``; the scan runs over raster order.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: Mamba model width ``d_model``.
        depth: number of bidirectional blocks.
        d_state, d_conv, expand: Mamba state size, causal conv width, inner expansion.
        backend: ``auto`` | ``mambapy`` | ``mamba_ssm`` (see module docstring).
        scan_chunk: ``mambapy`` only: tokens per recomputed scan chunk (bounds activation
            memory, see :func:`selective_scan_parallel`); ``None``: one scan over the sequence.
        dropout: dropout on each block's residual branch.
    """

    kind: ClassVar[str] = "bimamba"
    keeps_grid: ClassVar[bool] = True

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int = 1024,
        depth: int = 4,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        backend: MambaBackend = "auto",
        scan_chunk: int | None = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, grid=grid)
        if backend not in ("auto", "mambapy", "mamba_ssm"):
            raise ValueError(f"unknown mamba backend {backend!r}: use auto, mambapy or mamba_ssm")
        self.backend: MambaBackend = backend
        self.active_backend: str | None = None
        """The back end of the last forward pass (``None`` before the first)."""
        self.in_proj = nn.Linear(in_dim, hidden_dim)
        if scan_chunk is not None and scan_chunk < 1:
            raise ValueError(f"scan_chunk must be >= 1 or None, got {scan_chunk}")
        sizes = {"d_state": d_state, "d_conv": d_conv, "expand": expand, "scan_chunk": scan_chunk}
        self.blocks = nn.ModuleList(
            BiMambaBlock(hidden_dim, **sizes, dropout=dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, out_dim)

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, gh*gw, D_in) -> (B*V, gh*gw, D_out)``."""
        backend, reason = resolve_mamba_backend(self.backend, features.device)
        if backend != self.active_backend:
            # mambapy on a GPU works but is far slower and hungrier than the fused kernel: say so.
            level = logging.WARNING if backend == "mambapy" and features.is_cuda else logging.INFO
            logger.log(level, "bimamba resampler: selective scan on %s (%s)", backend, reason)
            self.active_backend = backend
        x = self.in_proj(features)  # (B*V, L, d)
        for block in self.blocks:
            x = block(x, backend=backend)  # (B*V, L, d)
        return self.out_proj(self.norm(x))  # (B*V, L, D_out)
