"""Positions for panoramas: PanoRoPE (LLM position ids) and the multi-view PE of PanoLLaVA."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ImageBlock": "panorope",
        "MultiViewPE": "multiview_pe",
        "direction_codes": "multiview_pe",
        "find_image_blocks": "panorope",
        "global_columns": "panorope",
        "panorope_positions": "panorope",
        "ring_columns": "panorope",
        "stitch_keep_index": "multiview_pe",
        "token_directions": "multiview_pe",
    },
)
