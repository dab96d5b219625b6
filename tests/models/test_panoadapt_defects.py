"""Defects a real-scale PanoAdapt run would hit (issue #14), each pinned by a test."""

import pytest
import torch

from panollava.config import ViewsConfig
from panollava.models.adapters.collate import AdapterCollate, AdaptSample
from panollava.models.adapters.families import FAMILIES, get_family
from panollava.models.adapters.tiny import build_tiny
from panollava.views import make_layout

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
    return [AdaptSample(torch.rand(9, 3, size, size, generator=g), "colors", a) for a in answers]


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
