"""Crop strategies: a panorama -> a :class:`ViewSet` (pixels + per-view cameras + adjacency)."""

from panollava.views.correspondence import PatchPairs, patch_correspondences
from panollava.views.layout import ViewLayout, ViewMeta, make_layout, ring_yaws
from panollava.views.viewset import ViewSet, build_viewset, build_viewsets, required_erp_width

__all__ = [
    "PatchPairs",
    "ViewLayout",
    "ViewMeta",
    "ViewSet",
    "build_viewset",
    "build_viewsets",
    "make_layout",
    "patch_correspondences",
    "required_erp_width",
    "ring_yaws",
]
