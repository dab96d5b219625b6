"""A picture of the positions PanoRoPE gives every image token (``panollava positions``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from panollava.positional.panorope import RopeKind, block_positions
from panollava.views import ViewLayout

__all__ = ["plot_positions"]


def plot_positions(
    layout: ViewLayout, grid: tuple[int, int], out_path: str | Path, kind: RopeKind = "mrope"
) -> Path:
    """Heat maps of every view's token positions -> ``out_path`` (PNG).

    ``mrope``: the width position ``w`` (relative to the block origin, see
    :func:`panollava.positional.block_positions`); ``1d``: the 1-D position.
    """
    row = 2 if kind == "mrope" else 0
    positions = [block_positions(layout, v, grid, kind)[row] for v in layout.views]
    n = len(positions)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    vmax = max(float(p.max()) for p in positions)
    for ax, v, pos in zip(axes.flat, layout.views, positions, strict=False):
        im = ax.imshow(pos.numpy(), cmap="viridis", vmin=0, vmax=vmax)  # the ring is cut: linear
        label = (
            "global" if v.kind == "global" else f"yaw {v.yaw_deg:+.0f}° pitch {v.pitch_deg:+.0f}°"
        )
        ax.set_title(f"{v.index}: {label}", fontsize=7)
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
    what = "M-RoPE width position w" if kind == "mrope" else "1-D position"
    fig.suptitle(
        f"PanoRoPE: {what} per token — {layout.strategy}, ring overlap {layout.ring_overlap:.0%}"
    )
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
