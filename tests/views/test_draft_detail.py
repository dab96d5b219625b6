"""Draft (reduced-scale) JPEG decoding keeps the detail the views show, up to their edges."""

import math

import pytest
import torch
import torch.nn.functional as F

from panollava.data.images import decode_erp
from panollava.data.schema import ImageConfig
from panollava.geometry import sample_views
from panollava.views import make_layout, required_erp_width
from panollava.views.schema import ViewsConfig


def _gradient_energy(x: torch.Tensor) -> float:
    gx = x[..., :, 1:] - x[..., :, :-1]
    gy = x[..., 1:, :] - x[..., :-1, :]
    return float((gx[..., :-1, :] ** 2 + gy[..., :, :-1] ** 2).mean())


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.mark.slow
def test_448px_tile_edges_keep_full_resolution_detail(sample_images):
    """The published 448-px tiles on the 6006x3003 panorama: the draft decode must not blur the
    tile edges (where a gnomonic tile samples densest). Measured against the truth (each view
    pixel's area average: the views rendered 4x larger from the full decode, 4x4-averaged), the
    draft's edges must be within 0.5 dB PSNR of the full-resolution cut's (here they are 0.6 dB
    better: the full cut's box mip level aliases). The centre-based width (a 1,502-px decode)
    lost 3 dB of edge gradient energy and 3.8 dB of PSNR; the draft now keeps its gradient
    energy within 1 dB of the full cut's (-0.6 dB: the DCT scaling is the better low-pass)."""
    path = sample_images[0]
    cfg = ViewsConfig(tile_size=448)
    geoms = [v.geometry for v in make_layout(cfg).tiles]
    full = decode_erp(path, cfg=ImageConfig(draft_decode=False))
    assert full.shape[-1] == 6006
    ref = sample_views(full[None], geoms, (448, 448), scale=1 / 255)[0]  # (8, 3, 448, 448)
    big = sample_views(full[None], geoms, (4 * 448, 4 * 448), scale=1 / 255)[0]
    truth = F.avg_pool2d(big, 4)
    draft = decode_erp(path, min_width=required_erp_width(cfg))
    assert draft.shape[-1] == 3003  # 1/2 DCT scale: the tiles need 2,975 px
    views = sample_views(draft[None], geoms, (448, 448), scale=1 / 255)[0]
    e = 448 // 8  # outer eighth of the tile on each side
    for band in (slice(0, e), slice(448 - e, 448)):
        ours, cut, true = views[..., band], ref[..., band], truth[..., band]
        assert _psnr(ours, true) >= _psnr(cut, true) - 0.5, (_psnr(ours, true), _psnr(cut, true))
        loss_db = 10 * math.log10(_gradient_energy(ours) / _gradient_energy(cut))
        assert loss_db >= -1.0, loss_db
