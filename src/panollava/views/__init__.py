"""Crop strategies: a panorama -> a :class:`ViewSet` (pixels + per-view cameras + adjacency)."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "PatchPairs": "correspondence",
        "ViewLayout": "layout",
        "ViewMeta": "layout",
        "ViewSet": "viewset",
        "build_viewset": "viewset",
        "build_viewsets": "viewset",
        "make_layout": "layout",
        "patch_correspondences": "correspondence",
        "required_erp_width": "viewset",
        "ring_yaws": "layout",
        "unit_float": "viewset",
        "unit_uint8": "viewset",
    },
)
