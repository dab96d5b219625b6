"""PanoLLaVA assembled from tiny real classes (SigLIP + Qwen3): every resampler, PE, stitching."""

import pytest
import torch

from panollava.data.collate import PanoCollate
from panollava.data.sample import PanoSample
from panollava.data.tokenizer import build_word_tokenizer
from panollava.losses import OverlapLossConfig, build_overlap_loss
from panollava.models.panollava.builder import build_panollava
from panollava.models.panollava.resamplers import ResamplerConfig
from panollava.models.panollava.schema import PanoLLaVAConfig
from panollava.views.schema import ViewsConfig

CAPTIONS = ["a red disc is in front", "a blue star is behind the viewer", "colors red and blue"]


def _samples(n=2):
    g = torch.Generator().manual_seed(0)
    return [
        PanoSample(
            views=torch.rand(9, 3, 32, 32, generator=g),
            query="colors",
            answer=CAPTIONS[k % 3],
            references=(CAPTIONS[k % 3],),
            url=f"p{k}",
            image=None,
            index=k,
        )
        for k in range(n)
    ]


def _build(resampler: str, **proj):
    tok = build_word_tokenizer([*CAPTIONS, "colors"])
    cfg = PanoLLaVAConfig(
        source="tiny",
        resampler=ResamplerConfig(
            type=resampler, hidden_dim=32, num_heads=2, num_queries=4, depth=1
        ),
        projector={"pe": resampler not in ("qformer", "perceiver"), **proj},
    )
    cfg.tiny.vision_hidden, cfg.tiny.llm_hidden = 32, 32
    views = ViewsConfig(tile_size=32)  # 2x2 patches of 16 px per view
    return build_panollava(cfg, views, tok), tok


@pytest.mark.parametrize("resampler", ["mlp", "bimamba", "qformer", "perceiver", "c_abstractor"])
def test_every_resampler_trains_a_step(resampler):
    model, tok = _build(resampler)
    batch = PanoCollate(tok, num_image_tokens=model.num_image_tokens, max_text_length=32)(
        _samples()
    )
    assert (batch["input_ids"] == model.vision_token_id).sum(1).tolist() == [
        model.num_image_tokens
    ] * 2
    out = model.step(batch)
    assert torch.isfinite(out.lm_loss)
    out.lm_loss.backward()
    assert model.resampler.parameters().__next__().grad is not None
    gen = PanoCollate(
        tok, num_image_tokens=model.num_image_tokens, max_text_length=32, train=False
    )(_samples())
    new = model.generate(
        gen["pixel_values"],
        gen["input_ids"],
        gen["attention_mask"],
        max_new_tokens=3,
        pad_token_id=tok.pad_token_id,
    )
    assert new.shape == (2, 3)


def test_overlap_features_and_stride_views():
    model, tok = _build("mlp", stitching="stride_views")
    assert model.num_image_tokens < 9 * 4  # stitching dropped covered tile tokens
    batch = PanoCollate(tok, num_image_tokens=model.num_image_tokens, max_text_length=32)(
        _samples()
    )
    batch["need_overlap"] = True
    out = model.step(batch)
    assert out.features.shape[:2] == (2, 8)
    total, parts = build_overlap_loss(OverlapLossConfig(min_pairs=1))(out.features, out.pairs)
    assert torch.isfinite(total) and parts["pairs"] > 0
