"""PanoAdapt on tiny stand-ins of every family's real HF classes (no downloads)."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import FAMILIES, get_family, resolve_module
from panollava.models.adapters.tiny import build_tiny
from panollava.models.adapters.wrapper import PanoAdaptModel
from panollava.models.lora import apply_lora
from panollava.models.schema import LoraSettings
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

CORPUS = ["the red disc is to the left of a blue star", "colors red and blue"]


def _setup(family, size=56):
    model, processor = build_tiny(family, corpus=CORPUS, image_size=size)
    facts = get_family(family)
    token_id = facts.image_token_id(model)
    layout = make_layout(ViewsConfig(tile_size=size))
    return model, processor, facts, token_id, layout


def _samples(n=2, size=56):
    g = torch.Generator().manual_seed(0)
    return [
        PanoSample(torch.rand(9, 3, size, size, generator=g), "colors", "red and blue", url=f"p{k}")
        for k in range(n)
    ]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_train_step_and_generation(family):
    model, processor, facts, token_id, layout = _setup(family)
    collate = AdapterCollate(
        processor,
        image_token_id=token_id,
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=True,
        views=layout.views,
    )
    batch = collate(_samples())
    counts = (batch["input_ids"] == token_id).sum(1)
    assert counts.tolist() == [
        9 * 4,
        9 * 4,
    ]  # 9 views x (2x2 merged tokens), found by the config id
    labelled = batch["labels"] != -100
    assert labelled.any(1).all() and not labelled[batch["input_ids"] == token_id].any()
    wrapper = PanoAdaptModel(
        model,
        language_model=resolve_module(model, facts.language_model),
        image_token_id=token_id,
        layout=layout,
        token_grid=(2, 2),
    )
    batch["need_overlap"] = True
    out = wrapper.step(batch)
    assert torch.isfinite(out.lm_loss)
    assert out.features.shape == (2, 8, 4, model.config.get_text_config().hidden_size)
    out.lm_loss.backward()
    gen_collate = AdapterCollate(
        processor,
        image_token_id=token_id,
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=False,
        views=layout.views,
    )
    gen = gen_collate(_samples())
    assert (gen["attention_mask"][:, 0] == 0).any() or gen["attention_mask"].all()  # left padded
    new = wrapper.generate(gen, max_new_tokens=3)
    assert new.shape == (2, 3)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_vision_lora_targets_match_modules(family):
    model, _, facts, _, _ = _setup(family)
    wrapped = apply_lora(
        model, LoraSettings(r=4, alpha=8, targets=["language", "vision"]), facts.lora_groups
    )
    tower = facts.vision_tower
    lora_in_vision = [n for n, _ in wrapped.named_modules() if tower in n and n.endswith("lora_A")]
    assert lora_in_vision, f"no LoRA adapter inside {tower}"


def test_qwen_vision_tower_has_no_q_proj():
    """The dead-loss trap: q/k/v targets put no adapter into Qwen2.5-VL's fused vision attention."""
    model, *_ = _setup("qwen2_5_vl")
    names = [
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".visual." in f".{n}"
    ]
    assert not [n for n in names if re.search(r"\.(q_proj|k_proj|v_proj)$", n)]
    assert [n for n in names if n.endswith("attn.qkv")]
    with pytest.raises(ValueError, match="match no Linear"):
        apply_lora(model, LoraSettings(targets=[r"model\.visual\..*\.(q_proj|k_proj|v_proj)"]), {})


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl"])
def test_image_features_are_in_raster_order(family):
    """Perturbing one 28x28 block of a view changes exactly the token at its raster position.

    The vision blocks are made identities (zeroed output projections), so each merged token sees
    only its own 2x2 patches; Qwen2.5-VL's window-permuted merger order is undone by HF.
    """
    model, processor, facts, _, _ = _setup(family, size=112)
    with torch.no_grad():
        for name, module in model.named_modules():
            if re.search(
                r"(attn\.proj|mlp\.down_proj|attention\.projection_layer|mlp\.fc2)$", name
            ) and (facts.vision_tower in name):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
    base = np.full((112, 112, 3), 128, np.uint8)

    def tokens(img):
        inputs = processor.image_processor(images=[img], return_tensors="pt")
        kwargs = {"image_grid_thw": inputs["image_grid_thw"]} if "image_grid_thw" in inputs else {}
        with torch.no_grad():
            out = model.model.get_image_features(inputs["pixel_values"], **kwargs).pooler_output
        return out[0] if isinstance(out, (list, tuple)) else out.reshape(-1, out.shape[-1])

    ref = tokens(base)
    assert ref.shape[0] == 16  # 4x4 merged grid
    for r, c in [(0, 0), (0, 3), (2, 1), (3, 2)]:
        img = base.copy()
        img[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = 255
        changed = torch.nonzero((tokens(img) - ref).abs().sum(-1) > 1e-5).flatten().tolist()
        assert changed == [r * 4 + c], (family, r, c, changed)
