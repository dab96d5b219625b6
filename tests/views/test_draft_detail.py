"""Draft (reduced-scale) JPEG decoding keeps the detail the views show, up to their edges."""

import math

import pytest
import torch

from panollava.data.images import decode_erp
from panollava.data.schema import ImageConfig
from panollava.views import build_viewset, make_layout, required_erp_width
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
    tile edges (where a gnomonic tile samples densest) against a full-resolution cut. The
    centre-based width (1,408 px -> a 1,502-px decode) lost 1.2 dB of edge gradient energy
    (3 dB with the old unfiltered sampler)."""
    path = sample_images[0]
    cfg = ViewsConfig(tile_size=448)
    tiles = [v.index for v in make_layout(cfg).tiles]
    full = decode_erp(path, cfg=ImageConfig(draft_decode=False))
    assert full.shape[-1] == 6006
    ref = build_viewset(full, cfg).pixels[tiles]  # (8, 3, 448, 448)
    draft = decode_erp(path, min_width=required_erp_width(cfg))
    views = build_viewset(draft, cfg).pixels[tiles]
    e = 448 // 8  # outer eighth of the tile on each side
    for band in (slice(0, e), slice(448 - e, 448)):
        loss_db = 10 * math.log10(
            _gradient_energy(views[..., band]) / _gradient_energy(ref[..., band])
        )
        assert loss_db >= -0.5, (draft.shape, loss_db)
        assert _psnr(views[..., band], ref[..., band]) >= 36.0  # 34.5 dB before
