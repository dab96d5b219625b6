"""Figures of a view decomposition: footprints on the ERP (overlaps shaded) plus the views."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # file output only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
import torch

from panollava.geometry import (
    erp_to_lonlat,
    lonlat_to_erp,
    lonlat_to_xyz,
    project_to_view,
    view_rays,
    xyz_to_lonlat,
)
from panollava.views.layout import ViewLayout, ViewMeta
from panollava.views.viewset import ViewSet, unit_float, unit_uint8

__all__ = ["coverage_map", "footprint_polyline", "save_views_figure"]


def coverage_map(layout: ViewLayout, erp_hw: tuple[int, int] = (256, 512)) -> torch.Tensor:
    """Number of tiles seeing each ERP pixel: ``(H, W)`` int (global views not counted)."""
    h, w = erp_hw
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    rays = lonlat_to_xyz(*erp_to_lonlat(xs, ys, h, w))  # (H, W, 3)
    count = torch.zeros(erp_hw, dtype=torch.int32)
    for v in layout.tiles:
        count += project_to_view(v.geometry, rays)[2].int()
    return count


def footprint_polyline(view: ViewMeta, erp_hw: tuple[int, int], n: int = 64) -> list[np.ndarray]:
    """A view's border in ERP pixel coordinates, split into pieces where it crosses the seam."""
    t = torch.linspace(-1, 1, n, dtype=torch.float64)
    one = torch.ones_like(t)
    xn = torch.cat((t, one, t.flip(0), -one))
    yn = torch.cat((-one, t, one, t.flip(0)))
    rays, _ = view_rays(view.geometry, xn, yn)
    x, y = lonlat_to_erp(*xyz_to_lonlat(rays), *erp_hw)
    pts = torch.stack((x, y), -1).numpy()
    jumps = np.nonzero(np.abs(np.diff(pts[:, 0])) > erp_hw[1] / 2)[0]
    return [p for p in np.split(pts, jumps + 1) if len(p) > 1]


def save_views_figure(
    erp: torch.Tensor, viewset: ViewSet, path: str | Path, *, title: str | None = None
) -> Path:
    """Write ``views.png``: the ERP ``(3, H, W)`` with footprints and overlaps, then every view."""
    path = Path(path)
    layout = viewset.layout
    thumb_w = min(1024, erp.shape[-1])
    thumb = torch.nn.functional.interpolate(
        unit_float(erp)[None], size=(thumb_w // 2, thumb_w), mode="area"
    )[0]
    erp_hw = (thumb_w // 2, thumb_w)
    n_views = len(viewset)
    cols = min(n_views, 5)
    rows = math.ceil(n_views / cols)
    fig = plt.figure(figsize=(3.0 * cols, 3.0 * cols / 2 + 3.2 * rows), dpi=110)
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[cols / 2, *([1.0] * rows)])
    ax = fig.add_subplot(gs[0, :])
    ax.imshow(
        thumb.permute(1, 2, 0).clamp(0, 1).numpy(),
        extent=(-0.5, erp_hw[1] - 0.5, erp_hw[0] - 0.5, -0.5),
    )
    if layout.tiles:
        cover = coverage_map(layout, erp_hw).numpy()
        shade = np.zeros((*erp_hw, 4))
        shade[cover >= 2] = (1.0, 0.85, 0.0, 0.35)  # overlaps
        shade[cover == 0] = (0.0, 0.0, 0.0, 0.45)  # not seen by any tile
        ax.imshow(shade, extent=(-0.5, erp_hw[1] - 0.5, erp_hw[0] - 0.5, -0.5))
    colors = plt.get_cmap("tab10")
    for v in layout.views:
        if v.kind == "global":
            continue
        for piece in footprint_polyline(v, erp_hw):
            ax.plot(piece[:, 0], piece[:, 1], color=colors(v.index % 10), lw=1.4)
        x, y = lonlat_to_erp(
            torch.tensor(math.radians(v.yaw_deg)), torch.tensor(math.radians(v.pitch_deg)), *erp_hw
        )
        ax.text(
            float(x),
            float(y),
            str(v.index),
            color="white",
            ha="center",
            va="center",
            fontsize=9,
            bbox={"facecolor": colors(v.index % 10), "alpha": 0.8, "pad": 1},
        )
    ax.set_xlim(-0.5, erp_hw[1] - 0.5)
    ax.set_ylim(erp_hw[0] - 0.5, -0.5)
    ax.set_xticks(np.linspace(-0.5, erp_hw[1] - 0.5, 9), [f"{d}°" for d in range(-180, 181, 45)])
    ax.set_yticks(np.linspace(-0.5, erp_hw[0] - 0.5, 5), [f"{d}°" for d in range(90, -91, -45)])
    overlap = f", tile overlap {layout.ring_overlap:.0%}" if layout.tiles else ""
    ax.set_title(title or f"{layout.strategy}: {n_views} views{overlap} (shaded: overlaps)")
    for k, v in enumerate(layout.views):
        a = fig.add_subplot(gs[1 + k // cols, k % cols])
        a.imshow(unit_uint8(viewset.pixels[k]).permute(1, 2, 0).cpu().numpy())
        label = v.name or v.kind
        a.set_title(f"{k}: {label} yaw {v.yaw_deg:+.0f}° pitch {v.pitch_deg:+.0f}°", fontsize=8)
        a.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
