"""PanoAdapt + overlap loss on the tiny families: the loss is alive and reaches vision LoRA."""

import pytest
import torch

from panollava.data.sample import PanoSample
from panollava.losses import (
    DeadLossError,
    OverlapLossConfig,
    build_overlap_loss,
    check_loss_reaches_trainable,
)
from panollava.models.adapters.loading import load_adapter
from panollava.models.lora import apply_lora
from panollava.models.schema import LoraSettings
from panollava.views.schema import ViewsConfig


def _batch(la):
    g = torch.Generator().manual_seed(0)
    samples = [
        PanoSample(torch.rand(9, 3, 112, 112, generator=g), "colors", "red and blue")
        for _ in range(2)
    ]
    batch = la.collate(train=True, max_text_length=64)(samples)
    batch["need_overlap"] = True
    return batch


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "internvl", "gemma3"])
@pytest.mark.parametrize("loss", ["vicreg_pairwise", "densecl"])
def test_overlap_loss_reaches_vision_lora(family, loss):
    la = load_adapter(
        family,
        ViewsConfig(tile_size=112),
        checkpoint="tiny",
        tiny_corpus=["red blue"],
        panorope=True,
    )
    wrapper = la.wrapper
    wrapper.hf_model = apply_lora(
        wrapper.hf_model,
        LoraSettings(r=4, alpha=8, targets=["language", "vision"]),
        la.facts.lora_groups,
    )
    out = wrapper.step(_batch(la))
    assert (
        out.features.shape[1] == 8
        and out.features.shape[2] == wrapper.token_grid[0] * wrapper.token_grid[1]
    )
    assert all(len(p) > 0 for p in out.pairs[0])
    overlap = build_overlap_loss(OverlapLossConfig(type=loss, min_pairs=1))
    total, parts = overlap(out.features, out.pairs)
    assert total > 0 and parts["pairs"] == 16
    reached = check_loss_reaches_trainable(wrapper.hf_model, total)  # frees the graph
    assert reached
    out = wrapper.step(_batch(la))
    overlap(out.features, out.pairs)[0].backward()
    vision_lora = [
        p
        for n, p in wrapper.hf_model.named_parameters()
        if la.facts.vision_tower in n and "lora_" in n
    ]
    assert vision_lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in vision_lora)


def test_dead_loss_check_names_attn_qkv_when_the_vision_tower_has_no_lora():
    """Without vision LoRA the overlap loss reaches nothing trainable (a q_proj pattern for
    Qwen's fused ``attn.qkv`` is refused by ``apply_lora`` itself, see test_panoadapt_defects)."""
    la = load_adapter(
        "qwen2_5_vl", ViewsConfig(tile_size=112), checkpoint="tiny", tiny_corpus=["red"]
    )
    settings = LoraSettings(r=4, alpha=8, targets=["language"])
    la.wrapper.hf_model = apply_lora(la.wrapper.hf_model, settings, la.facts.lora_groups)
    out = la.wrapper.step(_batch(la))
    total, _ = build_overlap_loss(OverlapLossConfig(min_pairs=1))(out.features, out.pairs)
    with pytest.raises(DeadLossError, match=r"attn\.qkv"):
        check_loss_reaches_trainable(la.wrapper.hf_model, total)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl", "gemma3"])
def test_step0_check_runs_the_vision_side_only(family):
    """#14.2: the overlap loss reads the LLM's input embeddings, so the dead-loss check must not
    run the language model (at real size its forward is most of a step's time and memory);
    the features are those of a full step and a loss that reaches nothing is still caught."""
    from panollava.config import PanoConfig
    from panollava.losses import OverlapLossConfig as Ovl
    from panollava.models.adapters.schema import PanoAdaptConfig
    from panollava.models.adapters.system import PanoAdaptSystem
    from panollava.training.schema import StageConfig, TrainConfig

    views = ViewsConfig(tile_size=112)
    la = load_adapter(family, views, checkpoint="tiny", tiny_corpus=["red blue"], panorope=True)
    stage = StageConfig(
        name="s", overlap_weight=1.0, lora={"r": 4, "alpha": 8, "targets": ["language"]}
    )
    cfg = PanoConfig(
        views=views,
        model=PanoAdaptConfig(family=family),
        overlap_loss=Ovl(min_pairs=1),
        train=TrainConfig(stages=[stage]),
    )
    system = PanoAdaptSystem(cfg, la)
    lm = system.model.hf_model.get_decoder()
    calls = []
    lm.register_forward_hook(lambda *_: calls.append(1))
    batch = _batch(la)
    with torch.no_grad():
        full = system.model.step(batch).features
        assert calls == [1]
        only = system.model.step({k: v for k, v in batch.items() if k != "labels"}).features
    assert calls == [1] and torch.equal(only, full)

    system.configure_stage(stage)  # LLM LoRA only: the overlap loss reaches nothing
    with pytest.raises(DeadLossError):
        system.check_stage(stage, batch)
    assert calls == [1]
