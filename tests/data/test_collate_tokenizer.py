"""Word-level tokenizer (save/load with AutoTokenizer) and the PanoLLaVA collate."""

import logging

import pytest
import torch
from transformers import AutoTokenizer

from panollava.data.collate import PanoCollate
from panollava.data.sample import PanoSample
from panollava.data.tokenizer import SPECIAL_TOKENS, build_word_tokenizer, save_word_tokenizer

CAPTIONS = ["a red disc in front, a blue star on the right.", "the objects are red and blue."]
K = 5


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    path = save_word_tokenizer(
        build_word_tokenizer([*CAPTIONS, "colors objects"]), tmp_path_factory.mktemp("tok")
    )
    return AutoTokenizer.from_pretrained(path)


def _sample(query: str, answer: str | None, views: int = 3) -> PanoSample:
    return PanoSample(
        views=torch.rand(views, 3, 8, 8),
        query=query,
        answer=answer,
        references=(answer or "ref",),
        url=f"{query}.jpg",
        image=None,
        index=0,
    )


def test_tokenizer_round_trip_and_specials(tok):
    assert tok.eos_token == tok.pad_token == "<|endoftext|>" and tok.unk_token == "<unk>"
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert len(set(ids)) == len(SPECIAL_TOKENS) and tok.unk_token_id not in ids[1:]
    enc = tok("A Red disc, a blue STAR.", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in enc
    assert tok.decode(enc) == "a red disc, a blue star."
    assert tok("zebra", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]
    text = tok.apply_chat_template(
        [{"role": "user", "content": "<|vision|>colors"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == "<|im_start|>user\n<|vision|>colors<|im_end|>\n<|im_start|>assistant\n"
    pieces = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
    assert pieces == [
        "<|im_start|>",
        "user",
        "<|vision|>",
        "colors",
        "<|im_end|>",
        "<|im_start|>",
        "assistant",
    ]


def test_tokenizer_vocabulary_is_deterministic():
    a = build_word_tokenizer(CAPTIONS).get_vocab()
    b = build_word_tokenizer(list(reversed(CAPTIONS))).get_vocab()
    assert a == b and a["<unk>"] == 0


def test_training_batch(tok):
    collate = PanoCollate(tok, num_image_tokens=K, max_text_length=32)
    batch = collate([_sample("colors", CAPTIONS[1]), _sample("objects", CAPTIONS[0])])
    assert batch["pixel_values"].shape == (2, 3, 3, 8, 8)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    vision = tok.convert_tokens_to_ids("<|vision|>")
    assert (ids == vision).sum(1).tolist() == [K, K]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for b, answer in enumerate([CAPTIONS[1], CAPTIONS[0]]):
        n = int(mask[b].sum())
        assert mask[b, :n].all() and not mask[b, n:].any()  # right padding
        target = labels[b][labels[b] != -100].tolist()
        assert target == [*tok(answer, add_special_tokens=False)["input_ids"], im_end]
        assert labels[b, n - 1] == im_end and (labels[b, n:] == -100).all()
    assert batch["queries"] == ["colors", "objects"] and batch["urls"][0] == "colors.jpg"


def test_generation_batch_is_left_padded_prompts(tok):
    collate = PanoCollate(tok, num_image_tokens=K, max_text_length=32, train=False)
    batch = collate([_sample("colors", None), _sample("small objects", None)])
    assert batch["labels"] is None
    mask = batch["attention_mask"]
    assert mask[:, -1].all() and not mask[0, 0]  # left padding, shorter prompt padded
    assistant = tok.convert_tokens_to_ids("assistant")
    assert (batch["input_ids"][:, -1] == assistant).all()
    assert batch["references"] == [["ref"], ["ref"]]


def test_text_budget_counts_text_only_and_truncates_answers(tok, caplog):
    prompt_text = (
        len(PanoCollate(tok, num_image_tokens=K, max_text_length=64).prompt_ids("colors")) - K
    )
    budget = prompt_text + 4
    collate = PanoCollate(tok, num_image_tokens=K, max_text_length=budget)
    with caplog.at_level(logging.WARNING):
        batch = collate([_sample("colors", CAPTIONS[0])])
    assert batch["input_ids"].shape[1] == budget + K  # image tokens are not counted
    assert (batch["labels"] != -100).sum() == 4 and "truncated" in caplog.text
    assert collate.budget.truncated == 1
    with pytest.raises(ValueError, match="prompt alone"):
        PanoCollate(tok, num_image_tokens=K, max_text_length=prompt_text - 1)(
            [_sample("colors", "a")]
        )


def test_clear_errors(tok):
    with pytest.raises(ValueError, match="not in the tokenizer"):
        PanoCollate(tok, num_image_tokens=K, max_text_length=32, vision_token="<image>")
    collate = PanoCollate(tok, num_image_tokens=K, max_text_length=32)
    with pytest.raises(ValueError, match="exactly one vision placeholder"):
        collate([_sample("<|vision|> colors", "a")])
    with pytest.raises(ValueError, match="different shapes"):
        collate([_sample("colors", "a", views=3), _sample("colors", "a", views=2)])
    with pytest.raises(ValueError, match="no answer"):
        collate([_sample("colors", None)])
