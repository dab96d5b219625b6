"""Resampler contract and the attention / feed-forward blocks shared by the query-based ones.

A resampler maps per-view patch features ``(B*V, N, D_in)`` with ``N = gh * gw`` (raster order,
row-major over the patch grid) to ``(B*V, N_out, D_out)`` and reports the output grid
``(gh_out, gw_out)``, or ``None`` when its tokens no longer sit on a grid (learned queries).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "FeedForward", "Grid", "Resampler", "ResamplerOutput"]

Grid = tuple[int, int]


class ResamplerOutput(NamedTuple):
    """``tokens (B*V, N_out, D_out)`` and their grid ``(gh_out, gw_out)`` (``None``: no grid)."""

    tokens: torch.Tensor
    grid: Grid | None


class Resampler(nn.Module):
    """Base class. Subclasses set ``kind``/``keeps_grid`` and implement :meth:`resample`.

    Args:
        in_dim: patch feature width ``D_in`` (1152 for SigLIP2-so400m).
        out_dim: output token width ``D_out``.
        grid: patch grid ``(gh, gw)`` of one view, e.g. ``(16, 16)``.
    """

    kind: ClassVar[str]
    keeps_grid: ClassVar[bool]
    """True when output token ``i`` still belongs to a cell of a (possibly pooled) 2-D grid."""

    def __init__(self, *, in_dim: int, out_dim: int, grid: Grid) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim} and {out_dim}")
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"grid must be (rows, cols) >= 1, got {grid}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.grid: Grid = (int(grid[0]), int(grid[1]))

    def output_grid(self, grid: Grid | None = None) -> Grid | None:
        """Grid of the output tokens for input ``grid`` (default: the build grid)."""
        return grid if grid is not None else self.grid

    def num_output_tokens(self, grid: Grid | None = None) -> int:
        """Number of output tokens per view for input ``grid`` (default: the build grid)."""
        out = self.output_grid(grid)
        if out is None:
            raise NotImplementedError(f"{type(self).__name__} must override num_output_tokens")
        return out[0] * out[1]

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, gh*gw, D_in)`` -> ``(B*V, N_out, D_out)``; ``grid`` is already validated."""
        raise NotImplementedError

    def forward(self, features: torch.Tensor, grid: Grid | None = None) -> ResamplerOutput:
        """Resample patch features ``(B*V, N, D_in)`` laid out on ``grid`` (default: build grid).

        Returns:
            ``ResamplerOutput(tokens (B*V, N_out, D_out), grid_out or None)``.
        """
        grid = self.grid if grid is None else (int(grid[0]), int(grid[1]))
        if features.dim() != 3:
            raise ValueError(f"expected features (B*V, N, D), got shape {tuple(features.shape)}")
        _, n, d = features.shape
        if d != self.in_dim:
            raise ValueError(f"{self.kind}: feature width {d} != in_dim {self.in_dim}")
        if n != grid[0] * grid[1]:
            raise ValueError(f"{self.kind}: {n} tokens do not fill the grid {grid[0]}x{grid[1]}")
        tokens = self.resample(features, grid)
        return ResamplerOutput(tokens, self.output_grid(grid))

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, grid={self.grid}"


class QueryResampler(Resampler):
    """Base of the query resamplers (``qformer``, ``perceiver``): ``num_queries`` learned
    queries read the view's patches through ``layers`` (each ``(queries, media) -> queries``),
    then ``LayerNorm -> Linear(d, D_out)``. ``(B*V, N, D_in) -> (B*V, num_queries, D_out)``;
    the output has no grid.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: query width ``d`` (patches are projected ``D_in -> d``).
        num_queries: learned queries per view.
        layers: the stack, built by the subclass with :func:`default_heads`.
        media_norm: LayerNorm the patches before projecting them (BLIP-2 does).
    """

    keeps_grid: ClassVar[bool] = False

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int,
        num_queries: int,
        layers: list[nn.Module],
        media_norm: bool,
    ) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, grid=grid)
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        self.num_queries = num_queries
        self.queries = nn.Parameter(torch.randn(num_queries, hidden_dim) * 0.02)  # (Q, d)
        self.media_norm = nn.LayerNorm(in_dim) if media_norm else nn.Identity()
        self.media_proj = nn.Linear(in_dim, hidden_dim)
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, out_dim)

    def output_grid(self, grid: Grid | None = None) -> Grid | None:
        return None

    def num_output_tokens(self, grid: Grid | None = None) -> int:
        return self.num_queries

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, N, D_in) -> (B*V, num_queries, D_out)``."""
        media = self.media_proj(self.media_norm(features))  # (B*V, N, d)
        queries = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)  # (B*V, Q, d)
        for layer in self.layers:
            queries = layer(queries, media)  # (B*V, Q, d)
        return self.out_proj(self.norm(queries))  # (B*V, Q, D_out)


def default_heads(hidden_dim: int, num_heads: int | None) -> int:
    """``num_heads``, or one head per 64 channels (at least one)."""
    return num_heads if num_heads is not None else max(1, hidden_dim // 64)


class Attention(nn.Module):
    """Multi-head attention without any mask: every query sees every key (non-causal).

    ``forward(x (B, Q, dim), context (B, K, context_dim)) -> (B, Q, dim)``; ``context=None`` is
    self-attention.
    """

    def __init__(
        self, dim: int, *, num_heads: int, context_dim: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
        context_dim = dim if context_dim is None else context_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(context_dim, dim)
        self.v_proj = nn.Linear(context_dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b, q_len, dim = x.shape
        k_len = context.shape[1]
        h = self.num_heads
        q = self.q_proj(x).view(b, q_len, h, dim // h).transpose(1, 2)  # (B, h, Q, dh)
        k = self.k_proj(context).view(b, k_len, h, dim // h).transpose(1, 2)  # (B, h, K, dh)
        v = self.v_proj(context).view(b, k_len, h, dim // h).transpose(1, 2)  # (B, h, K, dh)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=None,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=False,
        )  # (B, h, Q, dh)
        out = out.transpose(1, 2).reshape(b, q_len, dim)  # (B, Q, dim)
        return self.out_proj(out)


class FeedForward(nn.Module):
    """``Linear(dim, ratio*dim) -> GELU -> Linear -> Dropout`` on ``(..., dim)``."""

    def __init__(self, dim: int, *, ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, ratio * dim), nn.GELU(), nn.Linear(ratio * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
