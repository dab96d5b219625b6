"""Camera models of a view: view pixels <-> world rays, and ERP sampling coordinates.

A :class:`ViewGeometry` is one camera on the sphere (conventions in :mod:`.sphere`):

* ``"gnomonic"`` — a pinhole (perspective) camera at ``(yaw, pitch, roll)`` with horizontal and
  vertical field of view ``hfov x vfov``. As in py360convert (our oracle), the FoV spans the
  *centres* of the outermost pixels: column ``j`` of ``w`` sits at ``x_n = 2 j / (w - 1) - 1``.
* ``"equirect"`` — a rectangular lon/lat window of the ERP (``hfov`` degrees of longitude centred
  at ``yaw``, ``vfov`` degrees of latitude centred at ``pitch``; no roll). Pixels tile the window
  like an image resize: column ``j`` of ``w`` sits at ``x_n = 2 (j + 0.5) / w - 1``. ``vfov`` may exceed 180°:
  the rows beyond the poles are then invalid (that is how a letterboxed global view is described).

Normalised view coordinates ``(x_n, y_n)`` run over ``[-1, 1]`` (the FoV), left->right and
top->bottom; :func:`pixel_to_view` / :func:`view_to_pixel` convert from/to pixel coordinates
(pixel centres at integers) with the projection's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from panollava.geometry.sphere import (
    lonlat_to_erp,
    lonlat_to_xyz,
    rotation_matrix,
    wrap_lon,
    xyz_to_lonlat,
)

__all__ = [
    "Projection",
    "ViewGeometry",
    "erp_coords_for_view",
    "pixel_centers",
    "pixel_to_view",
    "project_to_view",
    "view_rays",
    "view_to_pixel",
]

Projection = Literal["gnomonic", "equirect"]


@dataclass(frozen=True)
class ViewGeometry:
    """One camera on the sphere. Angles in degrees (hashable, used as a cache key)."""

    projection: Projection
    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    vfov_deg: float
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.projection == "gnomonic":
            if not (0 < self.hfov_deg < 180 and 0 < self.vfov_deg < 180):
                raise ValueError(f"gnomonic FoV must be in (0, 180) degrees, got {self}")
        elif self.projection == "equirect":
            if self.roll_deg != 0:
                raise ValueError("equirect views cannot roll")
            if not (0 < self.hfov_deg <= 360 and 0 < self.vfov_deg <= 360):
                raise ValueError(f"equirect FoV must be in (0, 360] degrees, got {self}")
        else:
            raise ValueError(f"unknown projection {self.projection!r}")

    def _rotation(self, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
        t = lambda a: torch.tensor(math.radians(a), dtype=dtype, device=device)  # noqa: E731
        return rotation_matrix(t(self.yaw_deg), t(self.pitch_deg), t(self.roll_deg))


def _axis_to_view(geom: ViewGeometry, p: torch.Tensor, n: int) -> torch.Tensor:
    if geom.projection == "gnomonic":
        return p * (2.0 / max(n - 1, 1)) - 1.0
    return (p + 0.5) * (2.0 / n) - 1.0


def _axis_to_pixel(geom: ViewGeometry, q: torch.Tensor, n: int) -> torch.Tensor:
    if geom.projection == "gnomonic":
        return (q + 1.0) * (max(n - 1, 1) / 2.0)
    return (q + 1.0) * (n / 2.0) - 0.5


def pixel_to_view(
    geom: ViewGeometry, px: torch.Tensor, py: torch.Tensor, hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(...)`` of an ``hw`` view -> normalised ``(x_n, y_n)`` ``(...)``."""
    return _axis_to_view(geom, px, hw[1]), _axis_to_view(geom, py, hw[0])


def view_to_pixel(
    geom: ViewGeometry, xn: torch.Tensor, yn: torch.Tensor, hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised ``(x_n, y_n)`` ``(...)`` -> pixel coordinates of an ``hw`` view ``(...)``."""
    return _axis_to_pixel(geom, xn, hw[1]), _axis_to_pixel(geom, yn, hw[0])


def pixel_centers(
    geom: ViewGeometry, hw: tuple[int, int], *, dtype: torch.dtype = torch.float32, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised coordinates ``(h, w)`` each of the pixel centres of an ``hw`` view."""
    ys = torch.arange(hw[0], dtype=dtype, device=device)
    xs = torch.arange(hw[1], dtype=dtype, device=device)
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    return pixel_to_view(geom, px, py, hw)


def view_rays(
    geom: ViewGeometry, xn: torch.Tensor, yn: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """World unit rays ``(..., 3)`` and validity ``(...)`` for normalised view coordinates ``(...)``."""
    if geom.projection == "gnomonic":
        tx = math.tan(math.radians(geom.hfov_deg) / 2)
        ty = math.tan(math.radians(geom.vfov_deg) / 2)
        cam = torch.stack((xn * tx, -yn * ty, torch.ones_like(xn)), -1)  # (..., 3)
        cam = cam / cam.norm(dim=-1, keepdim=True)
        rot = geom._rotation(xn.dtype, xn.device)
        return cam @ rot.transpose(-1, -2), torch.ones_like(xn, dtype=torch.bool)
    lon = math.radians(geom.yaw_deg) + xn * math.radians(geom.hfov_deg) / 2
    lat = math.radians(geom.pitch_deg) - yn * math.radians(geom.vfov_deg) / 2
    valid = lat.abs() <= math.pi / 2 + 1e-6
    return lonlat_to_xyz(wrap_lon(lon), lat.clamp(-math.pi / 2, math.pi / 2)), valid


def project_to_view(
    geom: ViewGeometry, xyz: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World rays ``(..., 3)`` -> normalised view coordinates ``(x_n, y_n)`` and inside-mask ``(...)``.

    A ray is inside when it lies in front of a gnomonic camera and ``|x_n|, |y_n| <= 1``.
    """
    if geom.projection == "gnomonic":
        rot = geom._rotation(xyz.dtype, xyz.device)
        cam = xyz @ rot  # (..., 3) world -> camera (rot is orthonormal)
        z = cam[..., 2]
        front = z > 1e-8
        safe_z = torch.where(front, z, torch.ones_like(z))
        xn = cam[..., 0] / safe_z / math.tan(math.radians(geom.hfov_deg) / 2)
        yn = -cam[..., 1] / safe_z / math.tan(math.radians(geom.vfov_deg) / 2)
    else:
        lon, lat = xyz_to_lonlat(xyz)
        dlon = wrap_lon(lon - math.radians(geom.yaw_deg))
        xn = dlon / (math.radians(geom.hfov_deg) / 2)
        yn = (math.radians(geom.pitch_deg) - lat) / (math.radians(geom.vfov_deg) / 2)
        front = torch.ones_like(xn, dtype=torch.bool)
    inside = front & (xn.abs() <= 1 + 1e-9) & (yn.abs() <= 1 + 1e-9)
    return xn, yn, inside


def erp_coords_for_view(
    geom: ViewGeometry,
    out_hw: tuple[int, int],
    erp_hw: tuple[int, int],
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ERP pixel coordinates ``(h, w, 2)`` (x, y) that each output pixel samples, and valid ``(h, w)``.

    Computed in float64 for accuracy, returned in ``dtype``. ``x`` is unwrapped (the sampler wraps).
    """
    xn, yn = pixel_centers(geom, out_hw, dtype=torch.float64, device=device)
    if geom.projection == "equirect":
        # Direct lon/lat arithmetic: exact and free of atan2 branch cuts.
        lon = math.radians(geom.yaw_deg) + xn * math.radians(geom.hfov_deg) / 2
        lat = math.radians(geom.pitch_deg) - yn * math.radians(geom.vfov_deg) / 2
        valid = lat.abs() <= math.pi / 2 + 1e-9
        lat = lat.clamp(-math.pi / 2, math.pi / 2)
    else:
        rays, valid = view_rays(geom, xn, yn)
        lon, lat = xyz_to_lonlat(rays)
    x, y = lonlat_to_erp(lon, lat, *erp_hw)
    return torch.stack((x, y), -1).to(dtype), valid
