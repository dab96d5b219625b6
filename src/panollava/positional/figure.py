"""``panollava positions``: a picture of the positions PanoRoPE gives every image token."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from panollava.positional.panorope import global_columns, ring_columns
from panollava.views import ViewLayout

__all__ = ["plot_positions"]


def _view_positions(layout: ViewLayout, grid: tuple[int, int], kind: str) -> list[torch.Tensor]:
    """Per view, the (image-relative) position of each token: width column (mrope) or 1-D."""
    out = []
    for v in layout.views:
        rows = torch.arange(grid[0], dtype=torch.float64)[:, None].expand(grid)
        if v.kind == "tile":
            cols = global_columns(layout, v, grid)
            width = ring_columns(layout, grid[1])
        else:
            cols = torch.arange(grid[1], dtype=torch.float64)[None].expand(grid)
            width = float(grid[1])
        out.append(cols if kind == "mrope" else rows * width + cols)
    return out


def plot_positions(
    layout: ViewLayout,
    grid: tuple[int, int],
    out_path: str | Path,
    kind: Literal["mrope", "1d"] = "mrope",
) -> Path:
    """Heat maps of every view's token positions (M-RoPE width, or 1-D) -> ``out_path`` (PNG)."""
    positions = _view_positions(layout, grid, kind)
    n = len(positions)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    vmax = max(float(p.max()) for p in positions)
    for ax, v, pos in zip(axes.flat, layout.views, positions, strict=False):
        im = ax.imshow(
            pos.numpy(), cmap="twilight" if kind == "mrope" else "viridis", vmin=0, vmax=vmax
        )
        label = "global" if v.kind == "global" else f"yaw {v.yaw_deg:+.0f}°"
        ax.set_title(f"{v.index}: {label}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if grid[1] <= 16:
            for (r, c), value in zip(
                torch.cartesian_prod(torch.arange(grid[0]), torch.arange(grid[1])).tolist(),
                pos.flatten().tolist(),
                strict=True,
            ):
                ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=4, color="white")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    what = "M-RoPE width position (global yaw column)" if kind == "mrope" else "1-D position"
    fig.suptitle(
        f"PanoRoPE: {what} per token — {layout.strategy}, ring overlap {layout.ring_overlap:.0%}"
    )
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
