"""Training computes vocabulary logits only where an answer token is predicted.

A full-sequence LM head at real size is the largest single tensor of a step: Gemma3 (262k
vocabulary) on 9 views x 256 tokens is ~2,400 positions x 262,144 x 4 bytes = 2.5 GB per sample
for the fp32 logits alone, and as much again for their gradient, although only the ~30 answer
positions carry a loss. The LM head must see exactly the positions whose next token is labelled;
the loss itself stays HF's (tests/models/test_parity.py).
"""

import pytest
import torch
from test_panollava_model import _build, _samples
from test_parity import CORPUS, SIZE
from test_parity import _samples as _adapter_samples

from panollava.models.adapters.families import FAMILIES
from panollava.models.adapters.loading import load_adapter
from panollava.views.schema import ViewsConfig


def _rows_seen_by(head: torch.nn.Module) -> list[int]:
    seen: list[int] = []
    head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[:-1].numel()))
    return seen


def _answer_positions(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != -100).sum())  # position p predicts token p + 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_panoadapt_lm_head_sees_only_answer_positions(family):
    ours = load_adapter(family, ViewsConfig(tile_size=SIZE), checkpoint="tiny", tiny_corpus=CORPUS)
    batch = ours.collate(train=True, max_text_length=64)(_adapter_samples())
    seen = _rows_seen_by(ours.wrapper.hf_model.get_output_embeddings())
    loss = ours.wrapper.step(batch).lm_loss
    assert torch.isfinite(loss)
    assert seen == [_answer_positions(batch["labels"])]
    assert seen[0] < batch["input_ids"].numel() // 4


def test_panollava_lm_head_sees_only_answer_positions():
    from panollava.data.collate import PanoCollate

    model, tok = _build("mlp")
    batch = PanoCollate(tok, num_image_tokens=model.num_image_tokens, max_text_length=32)(
        _samples(3)
    )
    seen = _rows_seen_by(model.llm.get_output_embeddings())
    out = model.step(batch)
    out.lm_loss.backward()
    assert seen == [_answer_positions(batch["labels"])]
    assert seen[0] < batch["input_ids"].numel() // 4
