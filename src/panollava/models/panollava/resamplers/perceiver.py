"""``perceiver`` resampler (Flamingo Perceiver Resampler): learned latents attend to the media.

Each layer: the latents attend to the concatenation ``[media; latents]`` (keys and values from
both, as in Flamingo), then a feed-forward; pre-norm residual. No mask. The output is
``num_queries`` latents per view with no grid.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from panollava.models.panollava.resamplers.base import Attention, FeedForward, Grid, Resampler

__all__ = ["PerceiverLayer", "PerceiverResampler"]


class PerceiverLayer(nn.Module):
    """``latents (b, Q, d), media (b, N, d) -> (b, Q, d)``."""

    def __init__(self, dim: int, *, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.media_norm = nn.LayerNorm(dim)
        self.latent_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, dropout=dropout)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, latents: torch.Tensor, media: torch.Tensor) -> torch.Tensor:
        q = self.latent_norm(latents)  # (b, Q, d)
        context = torch.cat([self.media_norm(media), q], dim=1)  # (b, N + Q, d)
        latents = latents + self.attn(q, context)  # (b, Q, d)
        return latents + self.ff(self.ff_norm(latents))  # (b, Q, d)


class PerceiverResampler(Resampler):
    """Learned latents + ``depth`` Perceiver layers + ``LayerNorm -> Linear(d, D_out)``.

    ``(B*V, N, D_in) -> (B*V, num_queries, D_out)``; output grid ``None``.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: latent width ``d`` (media are projected ``D_in -> d``).
        depth: number of layers.
        num_queries: learned latents per view.
        num_heads: attention heads (``None``: ``hidden_dim // 64``, at least 1).
        dropout: attention and feed-forward dropout.
    """

    kind: ClassVar[str] = "perceiver"
    keeps_grid: ClassVar[bool] = False

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int = 1024,
        depth: int = 2,
        num_queries: int = 64,
        num_heads: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, grid=grid)
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        heads = num_heads if num_heads is not None else max(1, hidden_dim // 64)
        self.num_queries = num_queries
        self.latents = nn.Parameter(torch.randn(num_queries, hidden_dim) * 0.02)  # (Q, d)
        self.media_proj = nn.Linear(in_dim, hidden_dim)
        self.layers = nn.ModuleList(
            PerceiverLayer(hidden_dim, num_heads=heads, dropout=dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, out_dim)

    def output_grid(self, grid: Grid | None = None) -> Grid | None:
        return None

    def num_output_tokens(self, grid: Grid | None = None) -> int:
        return self.num_queries

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, N, D_in) -> (B*V, num_queries, D_out)``."""
        media = self.media_proj(features)  # (B*V, N, d)
        latents = self.latents.unsqueeze(0).expand(features.shape[0], -1, -1)  # (B*V, Q, d)
        for layer in self.layers:
            latents = layer(latents, media)  # (B*V, Q, d)
        return self.out_proj(self.norm(latents))  # (B*V, Q, D_out)
