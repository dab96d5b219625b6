"""PanoRoPE: geometry-driven positions, ring closure, text after image, train == generate."""

import pytest
import torch

from panollava.data.sample import PanoSample
from panollava.models.adapters.loading import load_adapter
from panollava.positional import global_columns, panorope_positions, ring_columns
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig


def test_global_columns_follow_geometry_and_close_the_ring():
    layout = make_layout(ViewsConfig())  # 8 x 90° tiles at 45°, physical overlap 0.5
    grid = (16, 16)
    assert ring_columns(layout, 16) == 64  # n * s * W
    cols = {v.index: global_columns(layout, v, grid) for v in layout.tiles}
    first, last = cols[layout.tiles[0].index], cols[layout.tiles[-1].index]  # yaw 0 and -45
    # the ring is cut between the last tile and the first: the last tile runs on past 64
    # (no jump inside it), and its right half is the first tile's left half one ring later
    steps = torch.diff(last[8])
    assert (steps > 0.5).all() and (steps < 1.5).all()
    assert first[8, 6] + 64 < last[8, -1] < first[8, 8] + 64
    # positions come from real yaws, not list order: another starting yaw permutes the tiles but
    # a tile at the same yaw relative to the first keeps the same columns
    shifted = make_layout(ViewsConfig(yaw_offset_deg=90.0))
    assert torch.allclose(
        global_columns(shifted, shifted.tiles[1], grid), cols[layout.tiles[1].index]
    )


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "internvl", "gemma3"])
def test_text_after_image_is_greater_and_train_equals_generate(family):
    views = ViewsConfig(tile_size=56)
    la = load_adapter(family, views, checkpoint="tiny", tiny_corpus=["a red disc"], panorope=True)
    seen = []
    la.wrapper.hf_model.model.language_model.register_forward_pre_hook(
        lambda m, a, k: seen.append(k.get("position_ids")), with_kwargs=True
    )
    g = torch.Generator().manual_seed(0)
    views_px = torch.rand(9, 3, 56, 56, generator=g)
    train = la.collate(train=True)([PanoSample(views_px, "what is there", "a red disc")])
    out = la.wrapper.step(train)
    assert torch.isfinite(out.lm_loss)
    # generation, with a second, longer prompt so the first one is left padded
    gen = la.collate(train=False)(
        [PanoSample(views_px, "what is there"), PanoSample(views_px, "what is there a red disc")]
    )
    la.wrapper.generate(gen, max_new_tokens=2)
    p_train, p_prefill, p_decode = seen[0], seen[1], seen[2]
    length = int(gen["attention_mask"][0].sum())
    assert torch.equal(p_train[..., 0, :length], p_prefill[..., 0, -length:])  # identical scheme
    ids = train["input_ids"][0]
    img = ids == la.wrapper.image_token_id
    last_img = int(torch.nonzero(img).max())
    pos = p_train[..., 0, :] if p_train.ndim == 3 else p_train[0]
    pos = pos if pos.ndim == 2 else pos[None]
    assert pos[:, last_img + 1 :].min() > pos[:, img].max()  # text after the image
    assert (
        p_decode[..., 0, -1].min() > p_prefill[..., 0, :].max() - 1e-6
    )  # decoding continues after
    default = panorope_positions(
        train["input_ids"],
        train["attention_mask"],
        la.wrapper.layout,
        image_token_id=la.wrapper.image_token_id,
        grid=la.wrapper.token_grid,
        kind=la.facts.rope_kind,
    )
    assert torch.equal(default, p_train)  # the LM saw exactly PanoRoPE's positions


def test_resize_layout_reproduces_qwen_default_mrope():
    """With only the global view PanoRoPE must equal Qwen2.5-VL's own get_rope_index."""
    views = ViewsConfig(strategy="resize", tile_size=56)
    la = load_adapter("qwen2_5_vl", views, checkpoint="tiny", tiny_corpus=["a red disc"])
    b = la.collate(train=False)(
        [
            PanoSample(torch.rand(1, 3, 56, 56), "what is there"),
            PanoSample(torch.rand(1, 3, 56, 56), "a"),
        ]
    )
    ref, _ = la.wrapper.hf_model.model.get_rope_index(
        b["input_ids"],
        b["mm_token_type_ids"],
        image_grid_thw=b["image_grid_thw"],
        attention_mask=b["attention_mask"],
    )
    ours = panorope_positions(
        b["input_ids"],
        b["attention_mask"],
        la.wrapper.layout,
        image_token_id=la.wrapper.image_token_id,
        grid=la.wrapper.token_grid,
        kind="mrope",
    )
    mask = b["attention_mask"].bool()
    assert torch.equal(ref[:, mask].float(), ours[:, mask])


def test_anyres_positions_differ_from_default_exactly_on_tiles():
    views = ViewsConfig(tile_size=56)
    la = load_adapter("qwen2_5_vl", views, checkpoint="tiny", tiny_corpus=["a"], panorope=True)
    b = la.collate(train=False)([PanoSample(torch.rand(9, 3, 56, 56), "what is there")])
    ref, _ = la.wrapper.hf_model.model.get_rope_index(
        b["input_ids"],
        b["mm_token_type_ids"],
        image_grid_thw=b["image_grid_thw"],
        attention_mask=b["attention_mask"],
    )
    ours = la.wrapper.positions(b)
    ids = b["input_ids"][0]
    img = torch.nonzero(ids == la.wrapper.image_token_id).flatten()
    first_tile = img[4:]  # the global view's 4 tokens come first and keep the default grid
    assert torch.equal(ours[:, 0, img[:4]], ref[:, 0, img[:4]].float())
    assert not torch.equal(ours[:, 0, first_tile], ref[:, 0, first_tile].float())
    assert torch.equal(
        ours[0, 0, first_tile], ours[0, 0, first_tile[:1]].expand(len(first_tile))
    )  # t fixed
