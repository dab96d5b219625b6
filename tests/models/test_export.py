"""Export round trip: LoRA merged, HF folder reloads with plain transformers, same outputs."""

import json

import pytest
import torch
import transformers

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import get_family
from panollava.models.adapters.tiny import build_tiny
from panollava.models.export import export_hf
from panollava.models.lora import apply_lora
from panollava.models.schema import LoraSettings
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl"])
def test_export_round_trip_same_outputs(tmp_path, family):
    model, processor = build_tiny(family, corpus=["a red disc"])
    facts = get_family(family)
    peft_model = apply_lora(
        model, LoraSettings(r=4, alpha=8, targets=["language", "vision"]), facts.lora_groups
    )
    peft_model.eval()
    with torch.no_grad():  # make the adapters non-trivial (B starts at zero)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    views = ViewsConfig(tile_size=56)
    collate = AdapterCollate(
        processor,
        image_token_id=facts.image_token_id(model),
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=False,
        views=make_layout(views).views,
    )
    batch = collate([PanoSample(torch.rand(9, 3, 56, 56), "colors")])
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        before = peft_model(**inputs).logits
    out = export_hf(peft_model, processor, tmp_path / "export", views=views, panorope=True)
    cls = getattr(transformers, facts.model_class)
    reloaded = cls.from_pretrained(out).eval()
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        after = reloaded(**inputs).logits
    assert torch.allclose(before, after, atol=1e-4)
    assert list(out.glob("*.safetensors"))
    meta = json.loads((out / "panorama.json").read_text())
    assert meta["panorope"] is True and len(meta["layout"]["views"]) == 9
    proc = transformers.AutoProcessor.from_pretrained(out)
    assert type(proc).__name__ == facts.processor_class
