"""Export also writes the LoRA adapters unmerged: a standard PEFT folder that
``PeftModel.from_pretrained(base, DIR)`` loads onto the untouched base model."""

from __future__ import annotations

import copy
import json

import torch
from peft import PeftModel

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import AdapterCollate
from panollava.models.adapters.families import get_family
from panollava.models.adapters.tiny import build_tiny
from panollava.models.export import ADAPTER_DIR, export_hf
from panollava.models.lora import apply_lora
from panollava.models.schema import LoraSettings
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig


def test_adapter_folder_loads_with_plain_peft(tmp_path) -> None:
    family = "qwen2_5_vl"
    base, processor = build_tiny(family, corpus=["a red disc"])
    facts = get_family(family)
    pristine = copy.deepcopy(base).eval()
    tuned = apply_lora(
        base, LoraSettings(r=4, alpha=8, targets=["language", "vision"]), facts.lora_groups
    ).eval()
    with torch.no_grad():  # non-trivial adapters (B starts at zero)
        for name, p in tuned.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    views = ViewsConfig(tile_size=56)
    collate = AdapterCollate(
        processor,
        image_token_id=facts.image_token_id(pristine),
        end_of_turn=facts.end_of_turn,
        max_text_length=64,
        train=False,
        views=make_layout(views).views,
    )
    batch = collate([PanoSample(torch.rand(9, 3, 56, 56), "colors")])
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        expected = tuned(**inputs).logits
    out = export_hf(tuned, processor, tmp_path / "export", views=views)
    adapter = out / ADAPTER_DIR
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    assert list(adapter.glob("*.safetensors"))
    loaded = PeftModel.from_pretrained(pristine, adapter).eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs).logits, expected, atol=1e-5)
