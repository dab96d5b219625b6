"""``perceiver`` resampler (Flamingo Perceiver Resampler): learned queries (the
latents) attend to the media.

Each layer: the latents attend to the concatenation ``[media; latents]`` (keys and values from
both, as in Flamingo), then a feed-forward; pre-norm residual. No mask. The output is
``num_queries`` latents per view with no grid.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from panollava.models.panollava.resamplers.base import (
    Attention,
    FeedForward,
    Grid,
    QueryResampler,
    default_heads,
)

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


class PerceiverResampler(QueryResampler):
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
        heads = default_heads(hidden_dim, num_heads)
        layers = [
            PerceiverLayer(hidden_dim, num_heads=heads, dropout=dropout) for _ in range(depth)
        ]
        super().__init__(
            in_dim=in_dim,
            out_dim=out_dim,
            grid=grid,
            hidden_dim=hidden_dim,
            num_queries=num_queries,
            layers=layers,
            media_norm=False,  # each Perceiver layer norms the media itself
        )
