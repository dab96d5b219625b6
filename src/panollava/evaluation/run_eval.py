"""Evaluate a trained run: generate for every (image, query) pair of a split, score, report.

Writes ``RUN_DIR/eval/<split>/predictions.csv`` (incremental, resumable), ``metrics.json`` and
``per_sample.csv`` (grouped protocol) and ``report.md``/``report.html``.

Sharding: ``shard=(k, n)`` makes this process answer the pairs of its share of the panoramas
(:func:`~panollava.evaluation.generation.image_shards`) into ``predictions.shard-k-of-n.csv``. Under ``torchrun`` the shard comes from ``RANK``/``WORLD_SIZE``
and rank 0 merges and scores once every rank has finished; shards started by hand are merged and
scored by :func:`merge_and_score` (``panollava eval ... --merge N``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from PIL import Image

from panollava.config import PanoConfig
from panollava.data.datasets import PanoramaDataset, build_dataset, split_rows
from panollava.data.sample import PanoSample
from panollava.evaluation.generation import (
    EvalItem,
    image_shards,
    merge_shards,
    run_generation,
    unique_items,
)
from panollava.evaluation.provenance import FINGERPRINT_FILE, claim_folder, eval_fingerprint
from panollava.evaluation.report import write_report
from panollava.evaluation.scoring import score_files
from panollava.evaluation.vllm_backend import VLLMPredictor, check_vllm_supported, import_vllm
from panollava.inference.export import export_run
from panollava.inference.predictor import Predictor
from panollava.progress import ProgressReporter
from panollava.views import make_layout
from panollava.views.schema import ViewsConfig

__all__ = ["evaluate_run", "merge_and_score", "shard_path"]

log = logging.getLogger(__name__)


def shard_path(out: Path, shard: tuple[int, int]) -> Path:
    """``predictions.csv`` for one process, ``predictions.shard-k-of-n.csv`` for shard k of n."""
    k, n = shard
    return out / "predictions.csv" if n == 1 else out / f"predictions.shard-{k}-of-{n}.csv"


def _env_shard() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` under torchrun / Lightning launchers, else ``(0, 1)``."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _eval_items(
    dataset: PanoramaDataset,
    tokenizer,
    overhead: Callable[[Any], int] = lambda row: 0,
    limit: int | None = None,
) -> tuple[list[EvalItem], dict]:
    """The split's unique pairs (the first ``limit`` of them); ``prompt_tokens`` = query tokens
    + ``overhead(row)`` (image tokens and template), so ``--token-budget`` bounds what the model
    really holds per batch."""
    index = {(g.rows[0].url, g.rows[0].query): k for k, g in enumerate(dataset.groups)}
    if limit is not None:
        index = dict(list(index.items())[:limit])
    items = [
        EvalItem(
            url,
            query,
            prompt_tokens=overhead(dataset.groups[k].rows[0])
            + len(tokenizer(query, add_special_tokens=False)["input_ids"]),
        )
        for (url, query), k in index.items()
    ]
    return items, index


def prompt_overhead_per_row(predictor, views: ViewsConfig) -> Callable[[Any], int]:
    """``row -> prompt tokens besides the query``. Tiles: one number. ``native``: the ERP goes
    in at its own size and dynamic-resolution processors (Qwen) make its tokens grow with the
    pixels, so the overhead follows each image's header size (cached per size; exact for 2:1
    ERPs, which ``load_erp`` keeps as they are)."""
    if not make_layout(views).native:
        fixed = predictor.prompt_overhead()
        return lambda row: fixed
    per_size: dict[tuple[int, int], int] = {}

    def overhead(row) -> int:
        with Image.open(row.image) as img:
            w, h = img.size
        if (h, w) not in per_size:
            per_size[(h, w)] = predictor.prompt_overhead(image_size=(h, w))
        return per_size[(h, w)]

    return overhead


class _QuestionSource:
    """``(url, query) -> Question``, cutting each panorama's views once for all its queries.

    Batches come image by image (:func:`plan_batches`); once :meth:`plan` has the batch order, a
    background thread decodes and cuts the next ``ahead`` panoramas while the model generates
    (Pillow's decoder and torch release the GIL), and views are dropped once their image's
    last pair has been asked for.
    """

    def __init__(self, dataset, index: dict[tuple[str, str], int], ahead: int = 4) -> None:
        self.dataset, self.index, self.ahead = dataset, index, ahead
        self._order: list[str] = []  # image URLs in the order the batches need them
        self._left: dict[str, int] = {}  # pairs still to be asked per image
        self._jobs: dict[str, Future] = {}
        self._next = 0  # position in _order of the next image to submit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="views")
        self._first_row = {}  # url -> the annotation row whose image it is
        for key, i in index.items():
            self._first_row.setdefault(key[0], dataset.groups[i].rows[0])
        self.decoded = 0  # panoramas decoded so far (reported, and checked by the tests)

    def plan(self, batches: list[list[EvalItem]]) -> None:
        items = [it for batch in batches for it in batch]
        self._order = list(dict.fromkeys(it.url for it in items))
        self._left = {}
        for it in items:
            self._left[it.url] = self._left.get(it.url, 0) + 1
        self._next = 0
        self._submit()

    def _load(self, row) -> torch.Tensor:
        views, _ = self.dataset.load_views(row, None)  # (V, 3, h, w), no augmentation
        self.decoded += 1
        return views

    def _submit(self) -> None:
        while self._next < len(self._order) and len(self._jobs) < self.ahead:
            url = self._order[self._next]
            self._next += 1
            if url not in self._jobs:
                self._jobs[url] = self._pool.submit(self._load, self._first_row[url])

    def __call__(self, key: tuple[str, str]):
        group = self.dataset.groups[self.index[key]]
        row = group.rows[0]
        job = self._jobs.get(row.url)
        if job is None:  # not planned (or planned too far ahead): load it now
            job = self._jobs[row.url] = self._pool.submit(self._load, row)
        views = job.result()
        left = self._left.get(row.url, 1) - 1
        self._left[row.url] = left
        if left <= 0:  # its last pair: free the views, prefetch the next image
            self._jobs.pop(row.url, None)
        self._submit()
        return PanoSample(views, row.query, None, group.references, row.url)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _references(cfg: PanoConfig, split: str) -> Path:
    references = getattr(cfg.data, split)
    if len(references) != 1:
        raise ValueError(f"scoring needs one reference file for split {split!r}, got {references}")
    return references[0]


def _score(cfg: PanoConfig, split: str, predictions: Path, n_boot: int) -> Path:
    """Score (grouped protocol) and report; ``metrics.json`` records the fingerprint."""
    out = predictions.parent
    fingerprint = json.loads((out / FINGERPRINT_FILE).read_text())
    limited = fingerprint["generation"].get("limit") is not None
    score_files(
        predictions,
        _references(cfg, split),
        out=out,
        protocol="grouped",
        n_boot=n_boot,
        run_name=cfg.experiment,
        allow_missing=limited,  # --limit N scores only the pairs it generated
    )
    metrics = out / "metrics.json"
    record = json.loads(metrics.read_text())
    record["provenance"] = fingerprint
    metrics.write_text(json.dumps(record, indent=2))
    write_report(out)
    return out


def evaluate_run(
    cfg: PanoConfig,
    run_dir: str | Path,
    *,
    split: str = "test",
    max_new_tokens: int = 128,
    batch_size: int = 16,
    token_budget: int | None = None,
    n_boot: int = 200,
    shard: tuple[int, int] | None = None,
    backend: str = "transformers",
    device: str = "auto",
    dtype: str = "auto",
    limit: int | None = None,
    overwrite: bool = False,
    progress_every_s: float = 30.0,
) -> Path:
    """Generate, score (grouped protocol) and report one split; returns the eval folder.

    The split's tables and images are checked before any model loads. Predictions resume only
    under an identical fingerprint (:mod:`panollava.evaluation.provenance`); ``overwrite``
    discards others. ``limit``: only the first N unique pairs (a quick look). Progress: a bar in
    a terminal, else a line with rate and ETA every ``progress_every_s`` seconds.

    With several shards, only the process that merges (rank 0 under torchrun) scores.
    ``backend="vllm"`` generates with vLLM from the run's merged export (PanoAdapt runs only,
    see :mod:`panollava.evaluation.vllm_backend`). ``device``/``dtype``: see
    :class:`panollava.inference.Predictor` (``auto``: this rank's GPU in bfloat16, else CPU).
    """
    run_dir = Path(run_dir)
    out = run_dir / "eval" / split
    shard = shard or _env_shard()
    if overwrite and shard[1] > 1:
        raise ValueError(
            "--overwrite with several shards would let one rank delete another's file: "
            f"delete {out} yourself, then run the shards"
        )
    dataset = build_dataset(cfg, split, mode="eval")  # tables and images, before any model
    predictor, tokenizer = _predictor(cfg, run_dir, backend, max_new_tokens, device, dtype)
    generation = {
        "max_new_tokens": max_new_tokens,
        "backend": backend,
        "device_type": str(getattr(predictor, "device", "cuda")).split(":")[0],
        "dtype": str(getattr(predictor, "dtype", "vllm default")),
        "limit": limit,
    }
    fingerprint = eval_fingerprint(cfg, run_dir, split=split, generation=generation)
    claim_folder(out, fingerprint, overwrite=overwrite)
    overhead = prompt_overhead_per_row(predictor, cfg.views)
    items, index = _eval_items(dataset, tokenizer, overhead, limit)

    questions = _QuestionSource(dataset, index)

    def predict(batch: list[EvalItem]) -> list[str]:
        return predictor.answer_many([questions(it.key) for it in batch])

    log.info("evaluating %d unique pairs of %s (shard %d of %d)", len(items), split, *shard)
    reporter: list[ProgressReporter] = []

    def progress(done: int, total: int) -> None:
        if not reporter:  # the first call says where a resumed run starts
            what = f"eval {split}" + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else "")
            reporter.append(
                ProgressReporter(what, total, "pairs", start=done, every_s=progress_every_s)
            )
        reporter[0].update(done)

    try:
        predictions = run_generation(
            items,
            predict,
            shard_path(out, shard),
            max_batch=batch_size,
            token_budget=token_budget,
            shard=shard,
            progress=progress,
            on_plan=questions.plan,
        )
    finally:
        questions.close()
        for r in reporter:
            r.close()
    log.info("%d panoramas decoded for this evaluation", questions.decoded)
    k, n = shard
    if n == 1:
        return _score(cfg, split, predictions, n_boot)
    if not _distributed_barrier():
        log.info("shard %d of %d done; merge with `panollava eval ... --merge %d`", k, n, n)
        return out

    try:
        return merge_and_score(cfg, run_dir, n, split=split, n_boot=n_boot) if k == 0 else out
    finally:
        dist.destroy_process_group()


def _predictor(
    cfg: PanoConfig, run_dir: Path, backend: str, max_new_tokens: int, device: str, dtype: str
):
    """``(predictor, tokenizer)`` for ``backend``; anything with ``answer_many(questions)``."""
    if backend == "transformers":
        predictor = Predictor.from_run(
            run_dir,
            cfg,
            allow_untrained=True,  # a zero-shot evaluation of the untrained model is allowed
            max_new_tokens=max_new_tokens,
            device=device,
            dtype=dtype,
        )
        log.info(
            "generating with %s on %s in %s", predictor.name, predictor.device, predictor.dtype
        )
        return predictor, predictor.system.tokenizer
    if backend != "vllm":
        raise ValueError(f"backend must be 'transformers' or 'vllm', got {backend!r}")

    check_vllm_supported(cfg)
    import_vllm()  # fail before the export when vLLM is missing
    export_dir = run_dir / "export"
    if not (export_dir / "panorama.json").exists():
        export_run(run_dir, export_dir)
    predictor = VLLMPredictor(
        export_dir, max_new_tokens=max_new_tokens, view_labels=cfg.model.view_labels
    )
    return predictor, predictor.processor.tokenizer


def _distributed_barrier() -> bool:
    """Wait for every rank when launched by torchrun (gloo works for CPU and GPU processes)."""
    if "MASTER_ADDR" not in os.environ or int(os.environ.get("WORLD_SIZE", 1)) < 2:
        return False

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    return True


def merge_and_score(
    cfg: PanoConfig, run_dir: str | Path, n_shards: int, *, split: str = "test", n_boot: int = 200
) -> Path:
    """Join the ``n_shards`` shard files of ``split`` into ``predictions.csv``, then score.

    Refuses when a shard is missing or incomplete, naming it and how to finish it.
    """
    out = Path(run_dir) / "eval" / split
    shards = [shard_path(out, (k, n_shards)) for k in range(n_shards)]
    missing = [str(p) for p in shards if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"shard files missing: {missing}; run `panollava eval --run {run_dir} "
            f"--shard K/{n_shards}` for each"
        )
    pairs = unique_items([EvalItem(r.url, r.query) for r in split_rows(cfg, split)])
    recorded = out / FINGERPRINT_FILE
    if not recorded.is_file():
        raise FileNotFoundError(f"{recorded} missing: the shards were not made by `panollava eval`")
    limit = json.loads(recorded.read_text())["generation"].get("limit")
    pairs = pairs[:limit] if limit is not None else pairs
    expected = {it.key for it in pairs}
    merged = merge_shards(shards, out / "predictions.csv.tmp")
    with merged.open(newline="", encoding="utf-8") as f:
        got = {(r["url"], r["query"]) for r in csv.DictReader(f)}
    lacking = expected - got
    if lacking:
        merged.unlink()
        owner = image_shards(pairs, n_shards)
        incomplete = sorted({owner[it.url] for it in pairs if it.key in lacking})
        raise ValueError(
            f"{len(lacking)} of {len(expected)} pairs have no prediction yet (shards "
            f"{incomplete} of {n_shards} unfinished); rerun those shards, they resume"
        )
    extra = got - expected
    if extra:
        merged.unlink()
        raise ValueError(
            f"{len(extra)} predicted pairs are not in the {split} references, e.g. "
            f"{sorted(extra)[0]}; the shards were made with a different config"
        )
    final = merged.replace(out / "predictions.csv")
    return _score(cfg, split, final, n_boot)
