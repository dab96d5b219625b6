"""The evaluation loop: one generation per pair, token-budget batches, crash-safe resume, shards."""

import csv
from pathlib import Path

import pytest

from panollava.evaluation.generation import (
    EvalItem,
    image_shards,
    merge_shards,
    plan_batches,
    run_generation,
)

QUIC360 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "quic360"


def _items(n_pairs=10, refs_per_pair=5):
    return [
        EvalItem(f"img{p % 4}.jpg", f"query {p}", prompt_tokens=5 + p % 3)
        for p in range(n_pairs)
        for _ in range(refs_per_pair)
    ]


def _answer(batch):
    return [f"answer to {it.query} about {it.url}" for it in batch]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_each_pair_generated_once(tmp_path):
    calls = []

    def predict(batch):
        calls.extend(it.key for it in batch)
        return _answer(batch)

    out = run_generation(_items(), predict, tmp_path / "p.csv", max_batch=3)
    rows = _read(out)
    assert len(rows) == 10 and len(calls) == 10 and len(set(calls)) == 10


def test_token_budget_batches():
    items = [EvalItem("a", str(k), prompt_tokens=k) for k in range(1, 9)]
    batches = plan_batches(items, max_batch=8, token_budget=12)
    assert all(len(b) * max(it.prompt_tokens for it in b) <= 12 for b in batches)
    assert [it.prompt_tokens for b in batches for it in b] == list(range(1, 9))  # sorted


def test_crash_then_resume_equals_uninterrupted(tmp_path):
    ref = _read(run_generation(_items(), _answer, tmp_path / "ref.csv", max_batch=2))
    seen = []

    def crashing(batch):
        if len(seen) >= 4:
            raise KeyboardInterrupt  # killed mid-run
        seen.extend(batch)
        return _answer(batch)

    path = tmp_path / "run.csv"
    with pytest.raises(KeyboardInterrupt):
        run_generation(_items(), crashing, path, max_batch=2)
    with path.open("a") as f:
        f.write("img9.jpg,half a ro")  # a torn write from the kill
    assert 0 < len(_read(path)) < 10
    resumed = []

    def predict(batch):
        resumed.extend(batch)
        return _answer(batch)

    run_generation(_items(), predict, path, max_batch=2)
    assert len(resumed) == 10 - 4  # nothing generated twice
    assert sorted(map(tuple, (r.values() for r in _read(path)))) == sorted(
        map(tuple, (r.values() for r in ref))
    )


def test_shards_cover_every_pair_once(tmp_path):
    shards = [
        run_generation(_items(), _answer, tmp_path / f"s{k}.csv", shard=(k, 3)) for k in range(3)
    ]
    merged = _read(merge_shards(shards, tmp_path / "all.csv"))
    assert len(merged) == 10
    assert len({(r["url"], r["query"]) for r in merged}) == 10
    with pytest.raises(ValueError, match="more than one shard"):
        merge_shards([shards[0], shards[0]], tmp_path / "dup.csv")


def test_grouped_eval_of_the_quic360_test_set_generates_each_pair_once(tmp_path):
    from panollava.data.quic360 import read_split

    rows = read_split([QUIC360 / "test.tsv"])
    assert len(rows) == 6246
    calls = []

    def predict(batch):
        calls.extend(it.key for it in batch)
        return ["a caption"] * len(batch)

    items = [EvalItem(r.url, r.query, prompt_tokens=len(r.query)) for r in rows]
    out = run_generation(items, predict, tmp_path / "p.csv", max_batch=64)
    assert len(calls) == len(set(calls)) == 1211
    assert len(_read(out)) == 1211


def test_batches_keep_each_image_together_ordered_by_length():
    items = [
        EvalItem(f"img{i}.jpg", f"q{q}", prompt_tokens=(7 * i + 3 * q) % 11 + 1)
        for i in range(6)
        for q in range(4)
    ]
    order = [it for b in plan_batches(items, max_batch=3) for it in b]
    urls = [it.url for it in order]
    runs = [u for k, u in enumerate(urls) if k == 0 or urls[k - 1] != u]
    assert sorted(runs) == sorted(set(urls))  # each image's pairs are contiguous
    longest = [max(it.prompt_tokens for it in items if it.url == u) for u in runs]
    assert longest == sorted(longest)  # images by their longest prompt


def test_shards_split_by_image():
    items = [EvalItem(f"img{i}.jpg", f"q{q}") for i in range(40) for q in range(3)]
    for n in (2, 3):
        owner = image_shards(items, n)
        assert set(owner) == {it.url for it in items}  # one process per panorama
        sizes = [sum(1 for s in owner.values() if s == k) for k in range(n)]
        assert max(sizes) - min(sizes) <= 1  # balanced by image
