"""``mlp`` resampler: a per-token Linear-LayerNorm-GELU stack; the token count and grid are kept."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from panollava.models.panollava.resamplers.base import Grid, Resampler

__all__ = ["MLPResampler"]


class MLPResampler(Resampler):
    """``depth`` blocks ``Linear -> LayerNorm -> GELU -> Dropout`` then ``Linear(hidden, out)``.

    ``(B*V, N, D_in) -> (B*V, N, D_out)``, token ``i`` stays patch ``i`` of the grid.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: width of the hidden blocks.
        depth: number of Linear-LN-GELU blocks (>= 1).
        dropout: dropout after each GELU.
    """

    kind: ClassVar[str] = "mlp"
    keeps_grid: ClassVar[bool] = True

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int = 1536,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, grid=grid)
        if depth < 1:
            raise ValueError(f"mlp resampler depth must be >= 1, got {depth}")
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [
                nn.Linear(width, hidden_dim),
                nn.LayerNorm(hidden_dim),
                nn.GELU(),
                nn.Dropout(dropout),
            ]
            width = hidden_dim
        layers.append(nn.Linear(hidden_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, N, D_in) -> (B*V, N, D_out)``."""
        return self.net(features)
