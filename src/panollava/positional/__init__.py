"""Positions for panoramas: PanoRoPE (LLM position ids) and the multi-view PE of PanoLLaVA."""

from panollava.positional.multiview_pe import (
    MultiViewPE,
    code_separation,
    direction_codes,
    finest_patch_deg,
    stitch_keep_index,
    token_directions,
)
from panollava.positional.panorope import (
    ImageBlock,
    block_positions,
    check_panorope_layout,
    find_image_blocks,
    global_columns,
    panorope_positions,
    position_grids,
    ring_columns,
    row_stride,
    tile_positions,
)

__all__ = [
    "ImageBlock",
    "MultiViewPE",
    "block_positions",
    "check_panorope_layout",
    "code_separation",
    "direction_codes",
    "find_image_blocks",
    "finest_patch_deg",
    "global_columns",
    "panorope_positions",
    "position_grids",
    "ring_columns",
    "row_stride",
    "stitch_keep_index",
    "tile_positions",
    "token_directions",
]
