"""Defects a real-scale PanoAdapt run would hit (issue #14), each pinned by a test."""

import re

import pytest
import torch

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import FAMILIES, get_family
from panollava.models.adapters.tiny import build_tiny
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

CORPUS = ["the red disc is to the left of a blue star", "colors red and blue"]


def _collate(family, *, train, size=56):
    model, processor = build_tiny(family, corpus=CORPUS, image_size=size)
    facts = get_family(family)
    collate = AdapterCollate(
        processor,
        image_token_id=facts.image_token_id(model),
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=train,
        views=make_layout(ViewsConfig(tile_size=size)).views,
    )
    return collate, processor, facts


def _unequal_samples(size=56):
    g = torch.Generator().manual_seed(0)
    answers = ["red", "the red disc is to the left of a blue star"]
    return [PanoSample(torch.rand(9, 3, size, size, generator=g), "colors", a) for a in answers]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_labels_are_exactly_the_answers_in_an_unequal_batch(family):
    """#14.1: InternVL's processor pads on the left; labels must still be answer + end of turn."""
    collate, processor, facts = _collate(family, train=True)
    samples = _unequal_samples()
    batch = collate(samples)
    mask = batch["attention_mask"]
    assert not bool(mask.all()), "the two rows should differ in length"
    tok = processor.tokenizer
    for row, labels, sample in zip(batch["input_ids"], batch["labels"], samples, strict=True):
        want = tok(sample.answer + facts.end_of_turn, add_special_tokens=False)["input_ids"]
        assert labels[labels != -100].tolist() == want
        assert row[labels != -100].tolist() == want


@pytest.mark.parametrize("train", [True, False])
def test_gemma3_prompt_has_one_bos(train):
    """#14.4: the chat template writes <bos>; a tokenizer that adds one must not add a second."""
    collate, processor, _ = _collate("gemma3", train=train)
    tok = processor.tokenizer
    assert tok("red")["input_ids"][0] == tok.bos_token_id  # adds bos like Gemma3's tokenizer
    batch = collate(_unequal_samples())
    bos = (batch["input_ids"] == tok.bos_token_id).sum(1)
    assert bos.tolist() == [1, 1]


def _lora_modules(model, targets):
    from panollava.models.lora import apply_lora
    from panollava.models.schema import LoraSettings

    wrapped = apply_lora(model, LoraSettings(r=4, alpha=8, targets=targets), _groups(model))
    return {n.rsplit(".lora_A", 1)[0] for n, _ in wrapped.named_modules() if n.endswith("lora_A")}


def _groups(model):
    return get_family(_FAMILY_OF[type(model).__name__]).lora_groups


_FAMILY_OF = {f.model_class: name for name, f in FAMILIES.items()}
_ATTN = {
    "language": r"\.(q_proj|k_proj|v_proj|o_proj)$",
    "language_mlp": r"\.(gate_proj|up_proj|down_proj)$",
}
_VISION_ATTN = {
    "qwen2_5_vl": r"\.attn\.(qkv|proj)$",
    "qwen2_vl": r"\.attn\.(qkv|proj)$",
    "internvl": r"\.attention\.(q_proj|k_proj|v_proj|projection_layer)$",
    "gemma3": r"\.self_attn\.(q_proj|k_proj|v_proj|out_proj)$",
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lora_groups_are_attention_only_as_published(family):
    """#14.5: ``language``/``vision`` = attention projections; MLP is its own explicit group."""
    facts = get_family(family)
    model, _ = build_tiny(family, corpus=CORPUS)
    lm, vt = facts.language_model, facts.vision_tower
    language = _lora_modules(model, ["language"])
    assert language and all(n.startswith(f"base_model.model.{lm}.") for n in language)
    assert all(re.search(_ATTN["language"], n) for n in language)
    assert len(language) == 4 * model.config.get_text_config().num_hidden_layers
    model, _ = build_tiny(family, corpus=CORPUS)
    mlp = _lora_modules(model, ["language_mlp"])
    assert mlp and all(re.search(_ATTN["language_mlp"], n) and f".{lm}." in n for n in mlp)
    model, _ = build_tiny(family, corpus=CORPUS)
    vision = _lora_modules(model, ["vision"])
    assert vision and all(re.search(_VISION_ATTN[family], n) and f".{vt}." in n for n in vision)
    model, _ = build_tiny(family, corpus=CORPUS)
    vision_mlp = _lora_modules(model, ["vision_mlp"])
    assert vision_mlp and not vision_mlp & vision
    assert all(f".{vt}." in n and re.search(r"mlp\.", n) for n in vision_mlp)


def test_lora_pattern_matching_nothing_is_an_error_naming_it():
    """#14.6: a dead pattern next to a live group is refused, not dropped."""
    from panollava.models.lora import apply_lora
    from panollava.models.schema import LoraSettings

    model, _ = build_tiny("qwen2_5_vl", corpus=CORPUS)
    dead = r"model\.visual\..*\.q_proj"
    with pytest.raises(ValueError, match=re.escape(repr(dead))):
        apply_lora(
            model, LoraSettings(targets=["language", dead]), get_family("qwen2_5_vl").lora_groups
        )


def test_tiny_gemma3_has_no_siglip_pooling_head():
    """#14.10: google/gemma-3-4b-it has vision_use_head false; a head would get LoRA never trained."""
    model, _ = build_tiny("gemma3", corpus=CORPUS)
    tower = get_family("gemma3").vision_tower
    heads = [n for n, _ in model.named_modules() if n.startswith(tower) and ".head" in n]
    assert not heads


def test_export_writes_the_checkpoint_dtype(tmp_path):
    """#14.10: a run of a bf16 checkpoint (loaded and merged in fp32) exports as bf16."""
    from safetensors import safe_open

    from panollava.config import PanoConfig
    from panollava.models.adapters.loading import load_adapter
    from panollava.models.adapters.schema import PanoAdaptConfig
    from panollava.models.adapters.system import PanoAdaptSystem

    model, processor = build_tiny("qwen2_vl", corpus=CORPUS)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    views = ViewsConfig(tile_size=56)
    loaded = load_adapter("qwen2_vl", views, checkpoint=str(tmp_path / "ckpt"))
    assert next(loaded.wrapper.hf_model.parameters()).dtype == torch.float32  # merged in fp32
    mcfg = PanoAdaptConfig(family="qwen2_vl", checkpoint=str(tmp_path / "ckpt"))
    system = PanoAdaptSystem(PanoConfig(views=views, model=mcfg), loaded)
    out = system.export(tmp_path / "export", {})
    (shard,) = out.glob("*.safetensors")
    with safe_open(str(shard), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (no __iter__)
    assert dtypes == {torch.bfloat16}


def test_adapter_collate_follows_the_one_text_length_rule():
    """Text tokens only (9 image placeholders not counted); a long answer is cut and counted."""
    collate, processor, _ = _collate("qwen2_5_vl", train=True)
    sample = _unequal_samples()[1]
    prompt = processor.apply_chat_template(collate.messages(sample), add_generation_prompt=True)
    ids = processor.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    text_tokens = sum(1 for i in ids if i != collate.image_token_id)
    assert text_tokens == len(ids) - 9
    collate.budget.max_text_length = text_tokens + 3
    batch = collate([sample])
    assert int((batch["labels"] != -100).sum()) == 3 and collate.budget.truncated == 1
    collate.budget.max_text_length = text_tokens - 1
    with pytest.raises(ValueError, match="image tokens not counted"):
        collate([sample])


@pytest.mark.parametrize(
    ("stage", "key"),
    [({"trainable": ["llm"]}, "trainable"), ({"vision_trainable_blocks": -1}, "vision_trainable")],
)
def test_panoadapt_refuses_stage_parts_it_would_ignore(stage, key):
    """PanoAdapt trains LoRA adapters only: a stage asking for whole trainable parts (a
    PanoLLaVA setting) was accepted and silently ignored; now it is refused, saying why."""
    from panollava.config import ConfigError, config_from_dict

    raw = {
        "model": {"system": "panoadapt", "family": "qwen2_5_vl", "source": "tiny"},
        "train": {"stages": [{"name": "lora", "lora": {"r": 8}, **stage}]},
    }
    with pytest.raises(ConfigError, match=rf"train\.stages\.0\.{key}.*LoRA"):
        config_from_dict(raw)
