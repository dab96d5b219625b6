"""How many ERP pixels the views need: densest point of each view (edges, corners, pitch)."""

import math

import pytest
import torch

from panollava.geometry import (
    ViewGeometry,
    erp_coords_for_view,
    footprint,
    pixel_steps,
    required_erp_width,
)


def _shortest_step(geom: ViewGeometry, hw, width: int) -> float:
    """Shortest view pixel step (one column or one row), in ERP pixels of a ``width`` ERP."""
    coords, _ = erp_coords_for_view(geom, hw, (width // 2, width), dtype=torch.float64)
    a, b = pixel_steps(coords, width)
    return float(torch.minimum(a.norm(dim=-1), b.norm(dim=-1)).min())


@pytest.mark.parametrize(
    ("fov", "vfov", "pitch", "size"),
    [(90, 90, 0, (256, 256)), (90, 90, 30, (448, 448)), (60, 60, -45, (256, 256)),
     (120, 90, 10, (200, 320)), (90, 90, 90, (128, 128))],
)  # fmt: skip
def test_required_width_is_set_by_the_densest_pixel(fov, vfov, pitch, size):
    geom = ViewGeometry("gnomonic", 30.0, pitch, fov, vfov)
    need = required_erp_width([geom], size)
    assert _shortest_step(geom, size, need) >= 1 - 1e-3  # nowhere coarser than the view
    assert _shortest_step(geom, size, int(need * 0.97)) < 1  # and not more than needed


def test_gnomonic_edges_need_one_over_cos2_the_centre():
    """A 90° tile's edge samples 2x more densely than its centre (1 / cos^2 45°)."""
    h = w = 256
    geom = ViewGeometry("gnomonic", 0.0, 0.0, 90.0, 90.0)
    focal = (w - 1) / 2 / math.tan(math.radians(45))  # pixel centres span the FoV
    centre = 2 * math.pi * focal
    need = required_erp_width([geom], (h, w))
    assert need >= 0.99 * centre / math.cos(math.radians(45)) ** 2  # was 805 (centre only)
    # Pitch changes where the extreme is, never lowers it below the edge value.
    pitched = required_erp_width([ViewGeometry("gnomonic", 0.0, 30.0, 90.0, 90.0)], (h, w))
    assert pitched >= 0.99 * centre / math.cos(math.radians(45)) ** 2


def test_equirect_windows_are_uniform():
    assert required_erp_width([ViewGeometry("equirect", 0, 0, 360, 180)], (256, 256)) == 512
    assert required_erp_width([ViewGeometry("equirect", 0, 0, 90, 180)], (256, 256)) == 1024


def test_footprint_of_a_resize_is_the_scale_factor():
    geom = ViewGeometry("equirect", 0.0, 0.0, 360.0, 180.0)
    coords, _ = erp_coords_for_view(geom, (64, 64), (512, 1024), dtype=torch.float64)
    fp = footprint(coords, 1024)  # 1024 / 64 across, 512 / 64 down: the longer step
    assert torch.allclose(fp, torch.full_like(fp, 16.0))
