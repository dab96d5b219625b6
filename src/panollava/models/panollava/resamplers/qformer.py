"""``qformer`` resampler (BLIP-2 style): learned queries read the patch features by cross-attention.

Each layer: self-attention among the queries (no mask: queries are NOT causal), cross-attention
from the queries to the patches, feed-forward; all pre-norm residual. The output is
``num_queries`` tokens per view with no grid.
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

__all__ = ["QFormerLayer", "QFormerResampler"]


class QFormerLayer(nn.Module):
    """``queries (b, Q, d), media (b, N, d) -> (b, Q, d)``; self-attention is optional."""

    def __init__(
        self, dim: int, *, num_heads: int, self_attention: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.self_attn: Attention | None = None
        self.self_norm: nn.LayerNorm | None = None
        if self_attention:
            self.self_norm = nn.LayerNorm(dim)
            self.self_attn = Attention(dim, num_heads=num_heads, dropout=dropout)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, num_heads=num_heads, dropout=dropout)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, queries: torch.Tensor, media: torch.Tensor) -> torch.Tensor:
        if self.self_attn is not None and self.self_norm is not None:
            queries = queries + self.self_attn(self.self_norm(queries))  # (b, Q, d)
        queries = queries + self.cross_attn(self.cross_norm(queries), media)  # (b, Q, d)
        return queries + self.ff(self.ff_norm(queries))  # (b, Q, d)


class QFormerResampler(QueryResampler):
    """Learned queries + ``depth`` Q-Former layers + ``LayerNorm -> Linear(d, D_out)``.

    ``(B*V, N, D_in) -> (B*V, num_queries, D_out)``; output grid ``None``.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: query width ``d`` (media are projected ``D_in -> d``).
        depth: number of layers.
        num_queries: learned queries per view.
        num_heads: attention heads (``None``: ``hidden_dim // 64``, at least 1).
        self_attention: self-attention among queries in every layer (BLIP-2 has it).
        dropout: attention and feed-forward dropout.
    """

    kind: ClassVar[str] = "qformer"

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int = 768,
        depth: int = 2,
        num_queries: int = 64,
        num_heads: int | None = None,
        self_attention: bool = True,
        dropout: float = 0.0,
    ) -> None:
        heads = default_heads(hidden_dim, num_heads)
        layers = [
            QFormerLayer(
                hidden_dim, num_heads=heads, self_attention=self_attention, dropout=dropout
            )
            for _ in range(depth)
        ]
        super().__init__(
            in_dim=in_dim,
            out_dim=out_dim,
            grid=grid,
            hidden_dim=hidden_dim,
            num_queries=num_queries,
            layers=layers,
            media_norm=True,
        )
