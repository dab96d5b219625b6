"""Positions for panoramas: PanoRoPE (LLM position ids) and the multi-view PE of PanoLLaVA."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ImageBlock": "panorope",
        "MultiViewPE": "multiview_pe",
        "block_positions": "panorope",
        "check_panorope_layout": "panorope",
        "code_separation": "multiview_pe",
        "direction_codes": "multiview_pe",
        "find_image_blocks": "panorope",
        "finest_patch_deg": "multiview_pe",
        "global_columns": "panorope",
        "panorope_positions": "panorope",
        "position_grids": "panorope",
        "ring_columns": "panorope",
        "row_stride": "panorope",
        "stitch_keep_index": "multiview_pe",
        "tile_positions": "panorope",
        "token_directions": "multiview_pe",
    },
)
