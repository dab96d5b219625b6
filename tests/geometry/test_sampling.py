"""Sampling against py360convert (the oracle) on the real shared panoramas."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from panollava.geometry import ViewGeometry, pad_erp, sample_views

py360convert = pytest.importorskip("py360convert")


@pytest.fixture(scope="module")
def real_erps(sample_images):
    """Three real panoramas decoded at 2048x1024 (uint8 HWC) to keep the test quick."""
    out = []
    for p in sample_images[:3]:
        img = Image.open(p).convert("RGB").resize((2048, 1024), Image.Resampling.BILINEAR)
        out.append(np.asarray(img).copy())
    return out


def _ours(img: np.ndarray, geom: ViewGeometry, hw, mode="bilinear") -> np.ndarray:
    """Point sampling (no prefilter), as the oracle does: compares geometry only."""
    erp = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    out = sample_views(erp, [geom], hw, mode, antialias=False)[0, 0]
    return out.permute(1, 2, 0).round().clamp(0, 255).numpy()


def test_e2p_matches_py360convert_random_views(real_erps):
    rng = random.Random(0)
    cases = [(179.0, 5.0, 90.0, 256), (-178.0, -20.0, 70.0, 200)]  # straddling the seam
    cases += [
        (
            rng.uniform(-180, 180),
            rng.uniform(-80, 80),
            rng.uniform(30, 120),
            rng.choice([96, 160, 256]),
        )
        for _ in range(10)
    ]
    for k, (yaw, pitch, fov, size) in enumerate(cases):
        img = real_erps[k % len(real_erps)]
        ref = py360convert.e2p(img, fov, yaw, pitch, (size, size)).astype(np.float32)
        ours = _ours(img, ViewGeometry("gnomonic", yaw, pitch, fov, fov), (size, size))
        diff = np.abs(ours - ref)[2:-2, 2:-2]  # interior pixels
        assert diff.mean() <= 1.5, (yaw, pitch, fov, size, diff.mean())


def test_e2p_rectangular_fov_and_roll_match_py360convert(real_erps):
    img = real_erps[0]
    ref = py360convert.e2p(img, (100.0, 60.0), 40.0, 25.0, (120, 200), in_rot_deg=30.0)
    ours = _ours(img, ViewGeometry("gnomonic", 40.0, 25.0, 100.0, 60.0, 30.0), (120, 200))
    assert np.abs(ours - ref.astype(np.float32))[2:-2, 2:-2].mean() <= 1.5


def test_positive_yaw_looks_right_and_pitch_up():
    h, w = 256, 512
    cols = torch.arange(w, dtype=torch.float32).expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    erp = torch.stack((cols, rows, torch.zeros(h, w)))[None]  # colour encodes the pixel
    out = sample_views(erp, [ViewGeometry("gnomonic", 90.0, 30.0, 10.0, 10.0)], (9, 9))[0, 0]
    centre = out[:, 4, 4]
    assert abs(centre[0].item() - (3 * w / 4 - 0.5)) < 0.6  # column 3W/4
    assert abs(centre[1].item() - (h / 2 - 0.5 - h * 30 / 180)) < 0.6  # 30° above the horizon


def test_cube_faces_match_e2c(real_erps):
    img = real_erps[1]
    faces = py360convert.e2c(img, face_w=128, cube_format="dict")
    cube = {"F": (0, 0), "R": (90, 0), "B": (180, 0), "L": (-90, 0), "U": (0, 90), "D": (0, -90)}
    for name, (yaw, pitch) in cube.items():
        ours = _ours(img, ViewGeometry("gnomonic", yaw, pitch, 90.0, 90.0), (128, 128))
        diff = np.abs(ours - faces[name].astype(np.float32))[2:-2, 2:-2]
        assert diff.mean() <= 1.5, (name, diff.mean())


def test_seam_is_continuous():
    """A view centred on the seam sees the last and first columns side by side."""
    h, w = 64, 128
    erp = torch.zeros(1, 1, h, w)
    erp[..., :, 0] = 1.0
    erp[..., :, -1] = 2.0
    out = sample_views(erp, [ViewGeometry("equirect", 180.0, 0.0, 4 * 360.0 / w, 180.0)], (h, 4))
    row = out[0, 0, 0, h // 2]
    assert row.tolist() == pytest.approx([0.0, 2.0, 1.0, 0.0], abs=1e-4)  # float32 grid


def test_pole_padding_continues_over_the_pole():
    h, w = 8, 16
    erp = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    padded = pad_erp(erp, 1)
    # Above row 0 at column c lies row 0 at column c + W/2.
    assert torch.equal(padded[0, 0, 0, 1:-1], torch.roll(erp[0, 0, 0], w // 2))
    assert torch.equal(padded[0, 0, -1, 1:-1], torch.roll(erp[0, 0, -1], w // 2))
    assert torch.equal(padded[0, 0, 1:-1, 0], erp[0, 0, :, -1])
    # A tiny view looking straight up is smooth (no black hole, no wrap garbage).
    smooth = torch.ones(1, 3, 64, 128)
    up = sample_views(
        smooth, [ViewGeometry("gnomonic", 0.0, 90.0, 60.0, 60.0)], (32, 32), "bicubic"
    )
    assert torch.allclose(up, torch.ones_like(up), atol=1e-5)


def test_batched_views_and_cache_are_consistent():
    erp = torch.rand(2, 3, 64, 128)
    geoms = [ViewGeometry("gnomonic", y, 0.0, 90.0, 90.0) for y in (0.0, 45.0, 90.0)]
    together = sample_views(erp, geoms, (16, 16))
    for k, g in enumerate(geoms):
        alone = sample_views(erp, [g], (16, 16))
        assert torch.allclose(together[:, k], alone[:, 0])
    assert together.shape == (2, 3, 3, 16, 16)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    erp = torch.rand(1, 3, 128, 256)
    geoms = [ViewGeometry("gnomonic", 30.0, 10.0, 90.0, 90.0)]
    cpu = sample_views(erp, geoms, (32, 32))
    gpu = sample_views(erp.cuda(), geoms, (32, 32)).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)
