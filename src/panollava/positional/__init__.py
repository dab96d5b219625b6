"""Positions for panoramas: PanoRoPE (LLM position ids) and the multi-view PE of PanoLLaVA."""

from panollava.positional.multiview_pe import (
    MultiViewPE,
    direction_codes,
    stitch_keep_index,
    token_directions,
)
from panollava.positional.panorope import (
    ImageBlock,
    find_image_blocks,
    global_columns,
    panorope_positions,
    ring_columns,
)

__all__ = [
    "ImageBlock",
    "MultiViewPE",
    "direction_codes",
    "find_image_blocks",
    "global_columns",
    "panorope_positions",
    "ring_columns",
    "stitch_keep_index",
    "token_directions",
]
