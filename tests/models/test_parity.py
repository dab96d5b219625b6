"""Parity, litgpt style: with PanoRoPE off, our wrapper's ``step`` loss and ``generate`` output
equal the raw HF model's on the same tiny config (same weights) and the same samples.

The reference is built without our collate: each sample goes alone (no padding) through the
family's processor with HF's own chat template, labels mask the prompt, and the batch loss is the
token-weighted mean of the per-sample losses (what one padded batch must reproduce).
"""

import pytest
import torch

from panollava.data.sample import PanoSample
from panollava.models.adapters.collate import view_arrays
from panollava.models.adapters.families import FAMILIES
from panollava.models.adapters.loading import load_adapter
from panollava.models.adapters.tiny import build_tiny
from panollava.views.schema import ViewsConfig

CORPUS = ["the red disc is to the left of a blue star", "colors red and blue"]
SIZE = 56


def _samples():
    g = torch.Generator().manual_seed(1)
    qa = [("colors", "red"), ("what is there", "the red disc is to the left of a blue star")]
    return [PanoSample(torch.rand(9, 3, SIZE, SIZE, generator=g), q, a) for q, a in qa]


def _raw_inputs(processor, sample, answer_text: str = ""):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}] * 9 + [{"type": "text", "text": sample.query}],
        }
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    return processor(
        images=[view_arrays(sample.views)],
        text=[prompt + answer_text],
        add_special_tokens=False,  # as HF's own apply_chat_template(tokenize=True)
        return_tensors="pt",
    )


def _reference_loss(model, processor, samples, end_of_turn):
    total, count = 0.0, 0
    for s in samples:
        prompt_len = _raw_inputs(processor, s)["input_ids"].shape[1]
        inputs = _raw_inputs(processor, s, s.answer + end_of_turn)
        labels = inputs["input_ids"].clone()
        labels[:, :prompt_len] = -100
        n = int((labels[:, 1:] != -100).sum())  # HF shifts labels by one
        with torch.no_grad():
            total += float(model(**inputs, labels=labels).loss) * n
        count += n
    return total / count


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_step_loss_and_generate_match_raw_hf(family):
    ours = load_adapter(family, ViewsConfig(tile_size=SIZE), checkpoint="tiny", tiny_corpus=CORPUS)
    raw, processor = build_tiny(family, corpus=CORPUS, image_size=SIZE)  # same seed: same weights
    samples = _samples()
    batch = ours.collate(train=True, max_text_length=64)(samples)
    with torch.no_grad():
        loss = float(ours.wrapper.step(batch).lm_loss)
    want = _reference_loss(raw, processor, samples, ours.facts.end_of_turn)
    assert loss == pytest.approx(want, rel=1e-4, abs=1e-5)

    gen_batch = ours.collate(train=False)(samples)
    new = ours.wrapper.generate(
        gen_batch, max_new_tokens=6, pad_token_id=processor.tokenizer.pad_token_id
    )
    for row, s in zip(new, samples, strict=True):
        inputs = _raw_inputs(processor, s)
        with torch.no_grad():
            out = raw.generate(**inputs, max_new_tokens=6, do_sample=False)
        ref = out[0, inputs["input_ids"].shape[1] :]
        got = row[: ref.numel()]
        assert got.tolist() == ref.tolist()
