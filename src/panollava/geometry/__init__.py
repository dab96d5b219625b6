"""Pure, batched spherical geometry (conventions in :mod:`panollava.geometry.sphere`)."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ViewGeometry": "projection",
        "erp_coords_for_view": "projection",
        "erp_to_lonlat": "sphere",
        "lonlat_to_erp": "sphere",
        "lonlat_to_xyz": "sphere",
        "pad_erp": "sampling",
        "pixel_centers": "projection",
        "pixel_to_view": "projection",
        "project_to_view": "projection",
        "required_erp_width": "sampling",
        "rotation_matrix": "sphere",
        "sample_erp": "sampling",
        "sample_views": "sampling",
        "view_rays": "projection",
        "view_to_pixel": "projection",
        "wrap_lon": "sphere",
        "xyz_to_lonlat": "sphere",
    },
)
