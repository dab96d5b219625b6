"""Pure, batched spherical geometry (conventions in :mod:`panollava.geometry.sphere`)."""

from panollava.geometry.density import footprint, pixel_steps, required_erp_width
from panollava.geometry.projection import (
    ViewGeometry,
    erp_coords_for_view,
    pixel_centers,
    pixel_to_view,
    project_to_view,
    view_rays,
    view_to_pixel,
)
from panollava.geometry.sampling import pad_erp, sample_erp, sample_views
from panollava.geometry.sphere import (
    erp_to_lonlat,
    lonlat_to_erp,
    lonlat_to_xyz,
    rotation_matrix,
    wrap_lon,
    xyz_to_lonlat,
)

__all__ = [
    "ViewGeometry",
    "erp_coords_for_view",
    "erp_to_lonlat",
    "footprint",
    "lonlat_to_erp",
    "lonlat_to_xyz",
    "pad_erp",
    "pixel_centers",
    "pixel_steps",
    "pixel_to_view",
    "project_to_view",
    "required_erp_width",
    "rotation_matrix",
    "sample_erp",
    "sample_views",
    "view_rays",
    "view_to_pixel",
    "wrap_lon",
    "xyz_to_lonlat",
]
