"""The one evaluation loop: batched generation written incrementally to ``predictions.csv``.

* each (image, query) pair is generated once (the grouped protocol scores it against all its
  references; prior code generated the same answer ~5x per pair);
* pairs are sorted by prompt length (image by image, so a panorama's views are cut once for all
  its queries) and batched by a token budget;
* rows are appended and flushed batch by batch; a rerun skips the pairs already written, so a
  killed evaluation resumes with no row lost or duplicated;
* ``shard=(k, n)`` gives process k the pairs of its share of the images (multi-GPU /
  multi-process); ``merge_shards``
  joins the shard files into one ``predictions.csv`` in a stable order.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PREDICTION_COLUMNS",
    "EvalItem",
    "image_shards",
    "merge_shards",
    "plan_batches",
    "run_generation",
    "unique_items",
]

PREDICTION_COLUMNS = ("url", "query", "prediction")


@dataclass(frozen=True)
class EvalItem:
    """One (image, query) pair to answer. ``url`` is the annotation's image reference."""

    url: str
    query: str
    image: Path | None = None
    prompt_tokens: int = 0  # estimated prompt length, for sorting and token budgets

    @property
    def key(self) -> tuple[str, str]:
        return (self.url, self.query)


def unique_items(items: Sequence[EvalItem]) -> list[EvalItem]:
    """Items with duplicate (url, query) pairs removed, first occurrence kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for it in items:
        if it.key not in seen:
            seen.add(it.key)
            out.append(it)
    return out


def plan_batches(
    items: Sequence[EvalItem], *, max_batch: int, token_budget: int | None = None
) -> list[list[EvalItem]]:
    """Order the pairs and cut them into batches of at most ``max_batch`` items whose padded size
    ``len(batch) * longest_prompt`` stays within ``token_budget``.

    Order: images by their longest prompt, each image's pairs together (by prompt length), so
    batches are near-uniform in length *and* a panorama's views are cut once for all its
    queries (the loop keeps the views of the images in flight).
    """
    longest: dict[str, int] = {}
    for it in items:
        longest[it.url] = max(longest.get(it.url, 0), it.prompt_tokens)
    ordered = sorted(items, key=lambda it: (longest[it.url], it.url, it.prompt_tokens, it.query))
    batches: list[list[EvalItem]] = []
    current: list[EvalItem] = []
    for it in ordered:
        longest_here = max([it.prompt_tokens, *(c.prompt_tokens for c in current)])
        too_big = token_budget is not None and (len(current) + 1) * longest_here > token_budget
        if current and (len(current) >= max_batch or too_big):
            batches.append(current)
            current = []
        current.append(it)
    if current:
        batches.append(current)
    return batches


def image_shards(items: Sequence[EvalItem], n: int) -> dict[str, int]:
    """``url -> shard`` (of ``n``): whole images round-robin in URL order, so each panorama is
    decoded by one process only and the shards differ in size by at most one image."""
    return {url: k % n for k, url in enumerate(sorted({it.url for it in items}))}


def _done_keys(path: Path) -> set[tuple[str, str]]:
    if not path.exists():
        return set()
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {(r["url"], r["query"]) for r in rows}


def _repair_tail(path: Path) -> None:
    """Drop a partial last line left by a crash in the middle of a write."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def run_generation(
    items: Sequence[EvalItem],
    predict: Callable[[list[EvalItem]], list[str]],
    out_csv: str | Path,
    *,
    max_batch: int = 8,
    token_budget: int | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[list[list[EvalItem]]], None] | None = None,
) -> Path:
    """Answer every unique (url, query) of ``items`` with ``predict`` and append to ``out_csv``.

    Returns the CSV path. Resumes when the file already holds some of the pairs.
    ``progress(done, total)`` is called once before the first batch, then after every batch.
    ``on_plan`` receives the batches ``predict`` will be called with, in order, before the
    first call (to prefetch their inputs).
    """
    out_csv = Path(out_csv)
    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard}")
    owner = image_shards(items, n)
    todo = [it for it in sorted(unique_items(items), key=lambda it: it.key) if owner[it.url] == k]
    _repair_tail(out_csv)
    done = _done_keys(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out_csv.exists()
    with out_csv.open("a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(PREDICTION_COLUMNS)
        finished = sum(it.key in done for it in todo)
        # Batches are planned over the whole shard, resumed or not, so a resumed run feeds the
        # model exactly the batches (and padding) of an uninterrupted one: same answers.
        planned = plan_batches(todo, max_batch=max_batch, token_budget=token_budget)
        planned = [b for b in planned if any(it.key not in done for it in b)]
        if on_plan is not None:
            on_plan(planned)
        if progress is not None:
            progress(finished, len(todo))  # where a resumed run starts
        for batch in planned:
            answers = predict(batch)
            if len(answers) != len(batch):
                raise RuntimeError(
                    f"predict returned {len(answers)} answers for {len(batch)} items"
                )
            rows = [
                (it.url, it.query, a)
                for it, a in zip(batch, answers, strict=True)
                if it.key not in done
            ]
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
            finished += len(rows)
            if progress is not None:
                progress(finished, len(todo))
    return out_csv


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def merge_shards(shards: Sequence[str | Path], out_csv: str | Path) -> Path:
    """Join shard CSVs into one, sorted by (url, query); duplicate pairs are an error."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for path in map(Path, shards):
        for r in _rows(path):
            key = (r["url"], r["query"])
            if key in rows:
                raise ValueError(f"{path}: pair {key} appears in more than one shard")
            rows[key] = r
    out_csv = Path(out_csv)
    with out_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(PREDICTION_COLUMNS))
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow({c: rows[key][c] for c in PREDICTION_COLUMNS})
    return out_csv
