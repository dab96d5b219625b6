"""Sphere coordinates: ERP pixels <-> (lon, lat) <-> unit vectors, and camera rotations.

The one coordinate convention of panollava (identical to py360convert's):

* **ERP image** of size ``(H, W)`` with ``W = 2H``. Pixel coordinates are continuous
  ``(x, y)`` with the centre of pixel column ``u`` at ``x = u`` and of row ``v`` at ``y = v``
  (so the image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, as in ``grid_sample`` with
  ``align_corners=False`` after normalisation).
* **Longitude** ``lon`` in radians, ``[-pi, pi)`` left to right; ``lon = 0`` is the image centre.
  **Latitude** ``lat`` in ``[-pi/2, pi/2]``, ``+pi/2`` at the top row.
  ``lon = ((x + 0.5) / W - 0.5) * 2 pi``, ``lat = (0.5 - (y + 0.5) / H) * pi``.
* **Unit vectors** ``(x, y, z)``: x right, y up, z forward (lon = lat = 0). Left-handed like
  py360convert: ``(cos lat sin lon, sin lat, cos lat cos lon)``.
* **Cameras**: ``yaw`` > 0 turns right (towards +x), ``pitch`` > 0 looks up, ``roll`` > 0 rotates
  the image content clockwise (py360convert's ``in_rot_deg``). Camera-to-world rotation is
  ``R = R_roll_about_view_axis · R_yaw · R_pitch`` applied to camera rays ``(x_c, y_c, 1)``.

All functions are pure, batched over leading dimensions and work on any device/dtype.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "erp_to_lonlat",
    "lonlat_to_erp",
    "lonlat_to_xyz",
    "rotation_matrix",
    "wrap_lon",
    "xyz_to_lonlat",
]


def erp_to_lonlat(
    x: torch.Tensor, y: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """ERP pixel coordinates ``(...)`` -> ``(lon, lat)`` in radians ``(...)``."""
    lon = ((x + 0.5) / width - 0.5) * (2 * math.pi)
    lat = (0.5 - (y + 0.5) / height) * math.pi
    return lon, lat


def lonlat_to_erp(
    lon: torch.Tensor, lat: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lon, lat)`` radians ``(...)`` -> ERP pixel coordinates ``(x, y)`` ``(...)``.

    ``x`` is not wrapped; callers sampling the image wrap it (see ``sampling.sample_erp``).
    """
    x = (lon / (2 * math.pi) + 0.5) * width - 0.5
    y = (0.5 - lat / math.pi) * height - 0.5
    return x, y


def wrap_lon(lon: torch.Tensor) -> torch.Tensor:
    """Wrap longitudes (radians) into ``[-pi, pi)``."""
    return torch.remainder(lon + math.pi, 2 * math.pi) - math.pi


def lonlat_to_xyz(lon: torch.Tensor, lat: torch.Tensor) -> torch.Tensor:
    """``(lon, lat)`` radians ``(...)`` -> unit vectors ``(..., 3)``."""
    cos_lat = torch.cos(lat)
    return torch.stack((cos_lat * torch.sin(lon), torch.sin(lat), cos_lat * torch.cos(lon)), -1)


def xyz_to_lonlat(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors ``(..., 3)`` (any norm > 0) -> ``(lon, lat)`` radians ``(...)``."""
    x, y, z = xyz.unbind(-1)
    lon = torch.atan2(x, z)
    lat = torch.atan2(y, torch.hypot(x, z))
    return lon, lat


def _axis_rotation(angle: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Rodrigues rotation matrices ``(..., 3, 3)`` for angles ``(...)`` about unit axes ``(..., 3)``.

    Rotates column vectors counter-clockwise when looking down the axis (right-hand rule).
    """
    c, s = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    ax, ay, az = axis.unbind(-1)
    zero = torch.zeros_like(ax)
    k = torch.stack(
        (
            torch.stack((zero, -az, ay), -1),
            torch.stack((az, zero, -ax), -1),
            torch.stack((-ay, ax, zero), -1),
        ),
        -2,
    )  # (..., 3, 3) cross-product matrix
    eye = torch.eye(3, dtype=angle.dtype, device=angle.device).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)


def rotation_matrix(
    yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor | None = None
) -> torch.Tensor:
    """Camera-to-world rotations ``(..., 3, 3)`` for angles in radians ``(...)``.

    ``world = R @ cam`` maps the camera's forward ray ``(0, 0, 1)`` to the direction
    ``(lon, lat) = (yaw, pitch)``; camera x stays horizontal (right) when ``roll = 0``.
    """
    yaw, pitch = torch.as_tensor(yaw), torch.as_tensor(pitch)
    yaw, pitch = torch.broadcast_tensors(yaw, pitch)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack(
        (
            torch.stack((cy, zero, sy), -1),
            torch.stack((zero, one, zero), -1),
            torch.stack((-sy, zero, cy), -1),
        ),
        -2,
    )  # rotation about +y taking +z towards +x
    r_pitch = torch.stack(
        (
            torch.stack((one, zero, zero), -1),
            torch.stack((zero, cp, sp), -1),
            torch.stack((zero, -sp, cp), -1),
        ),
        -2,
    )  # rotation about x taking +z towards +y
    rot = r_yaw @ r_pitch
    if roll is None:
        return rot
    roll = torch.as_tensor(roll, dtype=rot.dtype, device=rot.device).expand(yaw.shape)
    forward = rot[..., :, 2]  # (..., 3) viewing direction
    return _axis_rotation(-roll, forward) @ rot
