"""Image tokens per view from the processor's own resize rule, checked against the real
processor classes with the published checkpoints' settings (issue #14, defects 8 and 9)."""

import re

import numpy as np
import pytest
import torch
import transformers

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import get_family, resolve_module
from panollava.models.adapters.loading import view_tokens
from panollava.models.adapters.tiny import build_tiny
from panollava.models.adapters.wrapper import PanoAdaptModel
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

# OpenGVLab/InternVL3_5-2B-HF preprocessor_config.json: 448-px tiles, crop_to_patches true,
# min_patches 1, max_patches 12; processor image_seq_length 256.
INTERNVL_REAL = dict(size={"height": 448, "width": 448}, crop_to_patches=True, max_patches=12)
# Qwen/Qwen2.5-VL-3B-Instruct preprocessor_config.json: min_pixels 3136, max_pixels 12845056,
# patch_size 14, merge_size 2, temporal_patch_size 2.
QWEN_REAL = dict(min_pixels=3136, max_pixels=12845056, patch_size=14, merge_size=2)


def _emitted(processor, image: np.ndarray, token: str) -> int:
    """Placeholder tokens the real processor writes for one image."""
    tok = processor.tokenizer
    out = processor(images=[[image]], text=[f"{token} x"], add_special_tokens=False)
    return sum(1 for i in out["input_ids"][0] if i == tok.convert_tokens_to_ids(token))


@pytest.mark.parametrize("size, want", [(448, 256), (896, 1280)])
def test_internvl_view_tokens_follow_crop_to_patches(size, want):
    """#14.9: an 896-px view is 4 crops + a thumbnail: 1,280 tokens, not 256."""
    _, processor = build_tiny("internvl")
    processor.image_processor = transformers.GotOcr2ImageProcessor(**INTERNVL_REAL)
    processor.image_seq_length = 256
    facts = get_family("internvl")
    tokens = view_tokens(processor, facts, size, size)
    blank = np.zeros((size, size, 3), np.uint8)
    assert tokens.count == _emitted(processor, blank, facts.image_token) == want
    assert tokens.grid == (size // 28, size // 28)


@pytest.mark.parametrize("hw, want", [((1024, 2048), 2701), ((3003, 6006), 16290)])
def test_qwen_native_tokens_follow_smart_resize(hw, want):
    """#14.8: a full-resolution ERP through Qwen's processor: thousands of tokens, not ~512."""
    _, processor = build_tiny("qwen2_5_vl")
    processor.image_processor = transformers.Qwen2VLImageProcessor(**QWEN_REAL)
    facts = get_family("qwen2_5_vl")
    tokens = view_tokens(processor, facts, *hw)
    assert tokens.count == want == tokens.grid[0] * tokens.grid[1]
    if hw[0] <= 1024:  # the real processor on a real-size blank (the large one costs seconds)
        out = processor.image_processor(images=[np.zeros((*hw, 3), np.uint8)])
        assert int(out["image_grid_thw"].prod()) // 4 == want


def test_internvl_crop_tokens_are_reordered_to_raster():
    """Cropped views: the overlap features of a view are its crops' tokens in raster order.

    Vision blocks are identities (zeroed output projections), so a 28x28 block changes exactly
    one merged token of its crop (and the thumbnail, which the grid leaves out).
    """
    model, processor = build_tiny("internvl", image_size=56)
    processor.image_processor = transformers.GotOcr2ImageProcessor(
        size={"height": 56, "width": 56}, crop_to_patches=True, max_patches=12
    )
    facts = get_family("internvl")
    tokens = view_tokens(processor, facts, 112, 112)
    assert (tokens.count, tokens.grid) == (5 * 4, (4, 4))  # 2x2 crops of 2x2 tokens + thumbnail
    with torch.no_grad():
        for name, module in model.named_modules():
            if facts.vision_tower in name and re.search(r"(projection_layer|fc2)$", name):
                module.weight.zero_()
                module.bias.zero_()
    layout = make_layout(ViewsConfig(tile_size=112))
    wrapper = PanoAdaptModel(
        model,
        language_model=resolve_module(model, facts.language_model),
        image_token_id=facts.image_token_id(model),
        layout=layout,
        token_grid=tokens.grid,
        tokens_per_view=tokens.count,
        raster_index=tokens.raster_index,
    )
    collate = AdapterCollate(
        processor,
        image_token_id=wrapper.image_token_id,
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=False,
    )

    def features(views):
        batch = collate([PanoSample(views, "colors")])
        with torch.no_grad():
            return wrapper.step({**batch, "need_overlap": True}).features[0]  # (T, 16, D)

    base = torch.full((9, 3, 112, 112), 0.5)
    ref = features(base)
    for r, c in [(0, 0), (0, 3), (2, 1), (3, 2)]:
        views = base.clone()
        views[3, :, r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = 1.0
        delta = (features(views) - ref).abs().sum(-1)  # (T, 16)
        tile = layout.tiles.index(layout.views[3])
        assert torch.nonzero(delta[tile] > 1e-5).flatten().tolist() == [r * 4 + c]
        assert float(delta.sum() - delta[tile].sum()) == 0.0


def test_native_prompt_overhead_is_exact_for_the_erp_size():
    """#14.8: the eval token budget's overhead counts the real ERP's image tokens."""
    from panollava.inference import Predictor

    views = ViewsConfig(strategy="native", tile_size=56)
    predictor = Predictor.from_family("qwen2_5_vl", "tiny", views=views, device="cpu")
    processor = predictor.system.loaded.processor
    processor.image_processor = transformers.Qwen2VLImageProcessor(**QWEN_REAL)
    query = "what is there"
    erp = torch.zeros(1, 3, 1024, 2048)
    real = predictor._collate([PanoSample(erp, query)])["input_ids"].shape[1]
    own = len(predictor.system.tokenizer(query, add_special_tokens=False)["input_ids"])
    assert predictor.prompt_overhead(image_size=(1024, 2048)) + own == real
    assert real > 2701  # the ERP's 2,701 image tokens + template + query
    assert predictor.system.loaded.image_tokens(1024, 2048) == 2701


@pytest.mark.slow
def test_eval_budget_counts_each_native_erp_exactly(sample_images):
    """#14.8: the eval's per-row overhead + query = the real prompt, per ERP size (2048x1024:
    2,701 image tokens; 6006x3003: 16,290), with Qwen2.5-VL's real resize settings."""
    from types import SimpleNamespace

    from panollava.evaluation.run_eval import prompt_overhead_per_row
    from panollava.inference import Predictor

    views = ViewsConfig(strategy="native", tile_size=56)
    predictor = Predictor.from_family("qwen2_5_vl", "tiny", views=views, device="cpu")
    predictor.system.loaded.processor.image_processor = transformers.Qwen2VLImageProcessor(
        **QWEN_REAL
    )
    overhead = prompt_overhead_per_row(predictor, views)
    query = "what is there"
    own = len(predictor.system.tokenizer(query, add_special_tokens=False)["input_ids"])
    by_name = {p.name: p for p in sample_images}
    for name, image_tokens in [("img_03.jpg", 2701), ("img_01.jpg", 16290)]:
        _, viewset = predictor.load(by_name[name])
        batch = predictor._collate([PanoSample(viewset.pixels, query)])
        assert int((batch["input_ids"] == predictor.system.model.image_token_id).sum()) == (
            image_tokens
        )
        assert overhead(SimpleNamespace(image=by_name[name])) + own == batch["input_ids"].shape[1]
