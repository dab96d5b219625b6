import math

import pytest
import torch

from panollava.geometry import (
    ViewGeometry,
    erp_to_lonlat,
    lonlat_to_erp,
    lonlat_to_xyz,
    pixel_to_view,
    project_to_view,
    rotation_matrix,
    view_rays,
    view_to_pixel,
    wrap_lon,
    xyz_to_lonlat,
)


def test_erp_lonlat_conventions():
    h, w = 512, 1024
    # Pixel centres: column 0 is just right of -180°, the centre column boundary is lon 0.
    lon, lat = erp_to_lonlat(
        torch.tensor([w / 2 - 0.5, 3 * w / 4 - 0.5]), torch.tensor([h / 2 - 0.5, -0.5]), h, w
    )
    assert torch.allclose(lon, torch.tensor([0.0, math.pi / 2]))
    assert torch.allclose(lat, torch.tensor([0.0, math.pi / 2]))


def test_round_trips():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, generator=g, dtype=torch.float64) * 1024 - 0.5
    y = torch.rand(1000, generator=g, dtype=torch.float64) * 511
    lon, lat = erp_to_lonlat(x, y, 512, 1024)
    lon2, lat2 = xyz_to_lonlat(lonlat_to_xyz(lon, lat))
    x2, y2 = lonlat_to_erp(wrap_lon(lon2), lat2, 512, 1024)
    assert torch.allclose(torch.remainder(x2 + 0.5, 1024) - 0.5, x, atol=1e-7)
    assert torch.allclose(y2, y, atol=1e-7)


def test_rotation_is_orthonormal_and_points_forward():
    yaw, pitch, roll = (
        torch.tensor([0.3, -2.0]),
        torch.tensor([0.5, -1.2]),
        torch.tensor([0.1, 0.7]),
    )
    r = rotation_matrix(yaw, pitch, roll)
    eye = torch.eye(3).expand(2, 3, 3)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-6)
    fwd = r[..., :, 2]
    lon, lat = xyz_to_lonlat(fwd)
    assert torch.allclose(lon, yaw, atol=1e-6) and torch.allclose(lat, pitch, atol=1e-6)


@pytest.mark.parametrize("projection", ["gnomonic", "equirect"])
def test_view_round_trip(projection):
    geom = ViewGeometry(
        projection, 170.0, 20.0, 80.0, 60.0, 15.0 if projection == "gnomonic" else 0.0
    )
    xn = torch.linspace(-1, 1, 21, dtype=torch.float64).repeat(21)
    yn = torch.linspace(-1, 1, 21, dtype=torch.float64).repeat_interleave(21)
    rays, valid = view_rays(geom, xn, yn)
    assert valid.all()
    assert torch.allclose(rays.norm(dim=-1), torch.ones(441, dtype=torch.float64))
    xb, yb, inside = project_to_view(geom, rays)
    assert inside.all()
    assert torch.allclose(xb, xn, atol=1e-9) and torch.allclose(yb, yn, atol=1e-9)
    px, py = view_to_pixel(geom, xn, yn, (64, 48))
    assert torch.allclose(torch.stack(pixel_to_view(geom, px, py, (64, 48))), torch.stack((xn, yn)))


def test_behind_camera_is_outside():
    geom = ViewGeometry("gnomonic", 0.0, 0.0, 90.0, 90.0)
    _, _, inside = project_to_view(geom, torch.tensor([[0.0, 0.0, -1.0], [0.1, 0.0, 1.0]]))
    assert inside.tolist() == [False, True]
