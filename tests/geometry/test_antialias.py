"""Antialiased minification: views that sample the ERP coarsely match an area average."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from panollava.geometry import ViewGeometry, sample_views
from panollava.views import build_viewset, make_layout
from panollava.views.schema import ViewsConfig


@pytest.fixture(scope="module")
def erp(sample_images) -> torch.Tensor:
    """A real 2048x1024 panorama, ``(1, 3, H, W)`` float in [0, 1]."""
    img = Image.open(sample_images[2]).convert("RGB")
    assert img.size == (2048, 1024)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def test_global_view_matches_an_area_average(erp):
    """2048x1024 -> 256x256 (8:1 across, 4:1 down): plain bilinear gave 30.6 dB here."""
    area = F.avg_pool2d(erp, (4, 8))  # (1, 3, 256, 256): the exact area average
    glob = ViewGeometry("equirect", 0.0, 0.0, 360.0, 180.0)
    ours = sample_views(erp, [glob], (256, 256))[:, 0]
    assert _psnr(ours, area) >= 33.0
    # The `resize` baseline is the same view: it is not handicapped by our sampler either.
    resize = build_viewset(erp[0], ViewsConfig(strategy="resize")).pixels
    assert _psnr(resize, area) >= 33.0


def test_minified_tiles_match_a_supersampled_area_average(erp):
    """A 128-px 90° tile of a 2048-px ERP covers ~4 ERP pixels per pixel at its centre."""
    geom = ViewGeometry("gnomonic", 20.0, 10.0, 90.0, 90.0)
    # 8x8 point samples per output pixel, averaged: the area reference.
    fine = sample_views(erp, [geom], (1024, 1024), antialias=False)[:, 0]
    area = F.avg_pool2d(fine, 8)
    ours = sample_views(erp, [geom], (128, 128))[:, 0]
    plain = sample_views(erp, [geom], (128, 128), antialias=False)[:, 0]
    # The (128, 128) grid is not the pooled grid's centres (gnomonic pixel centres span the
    # FoV), so compare the inner part where both describe the same area within 1/8 pixel.
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    assert _psnr(ours[inner], area[inner]) >= _psnr(plain[inner], area[inner]) + 2.0


def test_magnified_views_are_point_sampled(erp):
    """Where the ERP is coarser than the view nothing is prefiltered: same as plain bilinear."""
    small = F.avg_pool2d(erp, 4)  # 512x256: a 256-px 90° tile magnifies everywhere
    geoms = [ViewGeometry("gnomonic", y, 0.0, 90.0, 90.0) for y in (0.0, 135.0)]
    aa = sample_views(small, geoms, (256, 256))
    plain = sample_views(small, geoms, (256, 256), antialias=False)
    assert torch.allclose(aa, plain, atol=1e-5)


@pytest.mark.parametrize(("antialias", "tol"), [(False, 1.0), (True, 2.0)])
def test_uint8_channels_last_path_matches_float(erp, antialias, tol):
    """The fast path (uint8 as Pillow decodes it: ``cv2.remap``) samples the same geometry:
    <= 1 level when point sampling. It rounds each sample to a uint8 level (mean |rounding|
    0.25) and so do its pyramid levels: <= 2 levels, mean < 0.35 when prefiltering."""
    u8 = (erp * 255).round().to(torch.uint8)
    hwc = u8[0].permute(1, 2, 0).contiguous()  # what decode_erp holds
    fast = hwc.permute(2, 0, 1)[None]  # (1, 3, H, W) channels-last view
    geoms = [v.geometry for v in build_viewset(erp[0, :, :64, :128], ViewsConfig()).views]
    a = sample_views(fast, geoms, (256, 256), antialias=antialias)
    b = sample_views(u8.float(), geoms, (256, 256), antialias=antialias)
    assert (a - b).abs().max() <= tol + 1e-3 and (a - b).abs().mean() < 0.35


def test_prefiltered_views_have_no_seam(erp):
    """Rolling the ERP by 90° of longitude rotates every minified view with it (the pyramid
    wraps around the seam like the ERP does)."""
    small = F.avg_pool2d(erp, 2)  # 1024x512: 128-px 90° tiles minify ~2x at their centres
    rolled = torch.roll(small, shifts=-256, dims=-1)  # content at yaw θ + 90° moves to yaw θ
    seam = ViewGeometry("gnomonic", 180.0, 0.0, 90.0, 90.0)
    before = ViewGeometry("gnomonic", 90.0, 0.0, 90.0, 90.0)
    a = sample_views(rolled, [before], (128, 128))
    b = sample_views(small, [seam], (128, 128))
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_pyramid_levels_are_box_averages(dtype):
    """Each level is the 2x2 box average of the one above (uint8: rounded), so no level
    reaches across the ±180° seam; odd sizes take two-tap averages."""
    from panollava.geometry.sampling import _next_level

    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 64, 256, generator=g) * 255
    img = img.round().to(dtype).contiguous(memory_format=torch.channels_last)
    half = _next_level(img, (32, 128))
    expected = F.avg_pool2d(img.float(), 2)
    tol = 0.5 if dtype == torch.uint8 else 1e-4
    assert half.dtype == dtype and (half.float() - expected).abs().max() <= tol
    odd = _next_level(img, (33, 129))  # odd sizes: 64 / 33 and 256 / 129 are not integers
    assert odd.shape[-2:] == (33, 129) and abs(odd.float().mean() - img.float().mean()) < 0.5


@pytest.mark.parametrize("size", [(96, 96), (100, 150)])
def test_remap_path_matches_grid_sample_at_the_seam_and_the_poles(size):
    """Samples within a pixel of the seam or a pole (computed apart from ``cv2.remap``, with
    spherical padding) equal the padded ``grid_sample`` path: <= 1 level when point sampling."""
    g = torch.Generator().manual_seed(1)
    u8 = (torch.rand(1, 3, 90, 180, generator=g) * 255).round().to(torch.uint8)
    geoms = [
        ViewGeometry("gnomonic", 180.0, 85.0, 100.0, 100.0),  # over the north pole, on the seam
        ViewGeometry("gnomonic", -170.0, -88.0, 120.0, 80.0, 20.0),  # the south pole, rolled
        ViewGeometry("equirect", 179.5, 0.0, 360.0, 180.0),  # every row and column, off-grid
    ]
    fast = sample_views(u8.contiguous(memory_format=torch.channels_last), geoms, size,
                        antialias=False)  # fmt: skip
    plain = sample_views(u8.float(), geoms, size, antialias=False)
    assert (fast - plain.round()).abs().max() <= 1.0
    aa = sample_views(u8, geoms, size)
    aa_float = sample_views(u8.float(), geoms, size)
    assert (aa - aa_float).abs().max() <= 2.0 + 1e-3
    # Equirect windows that shrink by non-integer factors, one across the seam: area means.
    windows = [ViewGeometry("equirect", 90.0, 0.0, 360.0, 180.0),
               ViewGeometry("equirect", -170.0, 0.0, 100.0, 60.0),  # starts left of -180°
               ViewGeometry("equirect", -30.0, 10.0, 100.0, 60.0)]  # fmt: skip
    a = sample_views(u8, windows, (26, 41))
    b = sample_views(u8.float(), windows, (26, 41))
    assert (a - b).abs().max() <= 1.0


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_uint8_path_keeps_the_geometry_for_every_channel_count(channels):
    """Grey, grey+alpha, RGB and RGBA uint8 ERPs sample the same geometry as float ones: <= 1
    level when point sampling (on noise, where a coarse interpolation weight shows most)."""
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (1, channels, 128, 256), generator=g, dtype=torch.uint8)
    geoms = [v.geometry for v in make_layout(ViewsConfig()).views]
    fast = sample_views(u8, geoms, (96, 96), antialias=False)
    plain = sample_views(u8.float(), geoms, (96, 96), antialias=False)
    assert (fast - plain.round()).abs().max() <= 1.0


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_uint8_views_are_the_float_views_rounded(channels):
    """``dtype=torch.uint8`` renders the same views as the float path, rounded: the remap path
    (blends, resized windows between sampled views, invalid pixels) and, for 2 channels, the
    ``grid_sample`` one; no float pass is needed to get them."""
    g = torch.Generator().manual_seed(2)
    u8 = torch.randint(0, 256, (2, channels, 128, 256), generator=g, dtype=torch.uint8)
    geoms = [
        ViewGeometry("gnomonic", 30.0, 10.0, 100.0, 100.0),
        ViewGeometry("equirect", 0.0, 0.0, 360.0, 180.0),  # a resized window between tiles
        ViewGeometry("gnomonic", 179.0, -40.0, 120.0, 80.0, 15.0),
        ViewGeometry("equirect", 0.0, 60.0, 90.0, 90.0),  # partly past the pole: zero rows
    ]
    views = sample_views(u8, geoms, (48, 64), dtype=torch.uint8)
    ref = sample_views(u8, geoms, (48, 64))
    assert views.dtype == torch.uint8 and views.shape == ref.shape == (2, 4, channels, 48, 64)
    assert (views.float() - ref).abs().max() <= 0.5 + 1e-3  # float -> uint8 is one rounding
    assert (views[:, 3, :, :4] == 0).all()  # rows above the pole stay zero


def test_uint8_views_need_a_uint8_erp():
    geoms = [ViewGeometry("gnomonic", 0.0, 0.0, 90.0, 90.0)]
    with pytest.raises(ValueError, match="uint8 from a uint8 ERP"):
        sample_views(torch.rand(1, 3, 32, 64), geoms, (8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match="scale 1"):
        sample_views(torch.zeros(1, 3, 32, 64, dtype=torch.uint8), geoms, (8, 8),
                     dtype=torch.uint8, scale=1 / 255)  # fmt: skip


def test_remap_path_reads_every_level0_row_it_needs():
    """The atlas holds only the rows of level 0 that are read: those of the tiles' level-0
    samples (about ±45° latitude here) and of any window resized from level 0 (the top rows at
    1:1). Two different ERPs in a row: a row left out would show the first one's pixels."""
    geoms = [
        ViewGeometry("gnomonic", 0.0, 0.0, 90.0, 90.0),
        ViewGeometry("equirect", 0.0, 67.5, 90.0, 45.0),  # rows 0-31 of 128, 1:1 (level 0)
        ViewGeometry("gnomonic", 90.0, -80.0, 60.0, 60.0),  # near the south pole
    ]
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        u8 = torch.randint(0, 256, (1, 3, 128, 256), generator=g, dtype=torch.uint8)
        views = sample_views(u8, geoms, (32, 64), dtype=torch.uint8)
        ref = sample_views(u8.float(), geoms, (32, 64))
        assert (views.float() - ref).abs().max() <= 2.0 + 1e-3
        assert torch.equal(views[0, 1], u8[0, :, :32, 96:160])  # the window is the ERP itself
