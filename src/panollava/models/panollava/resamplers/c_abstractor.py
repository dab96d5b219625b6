"""``c_abstractor`` resampler (Honeybee C-Abstractor): convolutions on the 2-D patch grid.

``1x1 proj -> depth × ConvSEBlock -> [adaptive avg-pool to pool_grid] -> depth × ConvSEBlock ->
readout MLP``. Blocks are ConvNeXt-like (depthwise 7×7 conv, LayerNorm, pointwise MLP) with a
squeeze-excite gate. Locality is preserved, so the output is still a grid: the input grid, or
``pool_grid`` when pooling (e.g. 16×16 -> 8×8 = 64 tokens per view). Zero padding at the view
border (a view is not periodic).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from panollava.models.panollava.resamplers.base import Grid, Resampler

__all__ = ["CAbstractorResampler", "ConvSEBlock", "SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """Channel gate ``x * sigmoid(W2 relu(W1 mean_hw(x)))`` on ``(b, C, H, W)``."""

    def __init__(self, channels: int, *, reduction: int = 4) -> None:
        super().__init__()
        squeezed = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (b, C, 1, 1)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(s))))


class ConvSEBlock(nn.Module):
    """``x + drop(SE(pw2(gelu(pw1(LN(dwconv7x7(x)))))))`` on ``(b, C, H, W)``."""

    def __init__(self, channels: int, *, mlp_ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.pw1 = nn.Linear(channels, mlp_ratio * channels)
        self.pw2 = nn.Linear(mlp_ratio * channels, channels)
        self.se = SqueezeExcite(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)  # (b, H, W, C)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))  # (b, H, W, C)
        h = self.se(h.permute(0, 3, 1, 2))  # (b, C, H, W)
        return x + self.dropout(h)


class CAbstractorResampler(Resampler):
    """Convolutional abstractor on the patch grid, optional pooling to ``pool_grid``.

    ``(B*V, gh*gw, D_in) -> (B*V, ph*pw, D_out)`` with ``(ph, pw) = pool_grid or (gh, gw)``.

    Args:
        in_dim, out_dim, grid: see :class:`Resampler`.
        hidden_dim: channel width of the conv blocks.
        depth: blocks before and after the pooling (``2 * depth`` in all).
        pool_grid: ``(rows, cols)`` of the adaptive average pooling; ``None``: no pooling.
        dropout: dropout on each block's residual branch.
    """

    kind: ClassVar[str] = "c_abstractor"
    keeps_grid: ClassVar[bool] = True

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        grid: Grid,
        hidden_dim: int = 1024,
        depth: int = 3,
        pool_grid: Grid | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, grid=grid)
        self.pool_grid: Grid | None = None if pool_grid is None else (pool_grid[0], pool_grid[1])
        self.output_grid(self.grid)  # validates pool_grid against the build grid
        self.in_proj = nn.Conv2d(in_dim, hidden_dim, 1)
        self.stage1 = nn.Sequential(
            *(ConvSEBlock(hidden_dim, dropout=dropout) for _ in range(depth))
        )
        self.stage2 = nn.Sequential(
            *(ConvSEBlock(hidden_dim, dropout=dropout) for _ in range(depth))
        )
        self.readout = nn.Sequential(
            nn.Linear(hidden_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)
        )

    def output_grid(self, grid: Grid | None = None) -> Grid:
        grid = self.grid if grid is None else grid
        if self.pool_grid is None:
            return grid
        ph, pw = self.pool_grid
        if not (1 <= ph <= grid[0] and 1 <= pw <= grid[1]):
            raise ValueError(
                f"c_abstractor pool_grid {ph}x{pw} must lie within the patch grid "
                f"{grid[0]}x{grid[1]} (pooling only shrinks)"
            )
        return self.pool_grid

    def resample(self, features: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``(B*V, gh*gw, D_in) -> (B*V, ph*pw, D_out)``."""
        b, _, d = features.shape
        gh, gw = grid
        x = features.transpose(1, 2).reshape(b, d, gh, gw)  # (B*V, D_in, gh, gw), raster order
        x = self.stage1(self.in_proj(x))  # (B*V, C, gh, gw)
        if self.pool_grid is not None:
            x = F.adaptive_avg_pool2d(x, self.output_grid(grid))  # (B*V, C, ph, pw)
        x = self.stage2(x)  # (B*V, C, ph, pw)
        x = x.flatten(2).transpose(1, 2)  # (B*V, ph*pw, C), raster order
        return self.readout(x)  # (B*V, ph*pw, D_out)
