"""Evaluate a trained run: generate for every (image, query) pair of a split, score, report.

Writes ``RUN_DIR/eval/<split>/predictions.csv`` (incremental, resumable), ``metrics.json`` and
``per_sample.csv`` (grouped protocol) and ``report.md``/``report.html``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from panollava.config import PanoConfig
from panollava.evaluation.generation import EvalItem, run_generation
from panollava.training.checkpoint import load_trainable
from panollava.training.run import RunState

__all__ = ["evaluate_run", "load_trained_system"]

log = logging.getLogger(__name__)


def load_trained_system(cfg: PanoConfig, run_dir: Path):
    """The run's system with every finished stage's weights loaded, in stage order."""
    from panollava.systems import build_system

    system = build_system(cfg, run_dir)
    state = RunState.load(run_dir, [s.name for s in cfg.train.stages])
    for stage in cfg.train.stages:
        record = state.record(stage.name)
        if record.status != "done":
            continue
        system.configure_stage(stage)
        load_trainable(system.model, run_dir / record.weights)
    system.model.eval()
    return system


def evaluate_run(
    cfg: PanoConfig,
    run_dir: str | Path,
    *,
    split: str = "test",
    max_new_tokens: int = 128,
    batch_size: int = 16,
    n_boot: int = 200,
) -> Path:
    """Generate, score (grouped protocol) and report one split; returns the eval folder."""
    from panollava.data.datasets import build_dataset
    from panollava.evaluation.report import write_report
    from panollava.evaluation.scoring import score_files

    run_dir = Path(run_dir)
    out = run_dir / "eval" / split
    system = load_trained_system(cfg, run_dir)
    dataset = build_dataset(cfg, split, mode="eval")
    collate = system.eval_collate()
    tokenizer = system.tokenizer
    index = {(g.rows[0].url, g.rows[0].query): k for k, g in enumerate(dataset.groups)}
    items = [
        EvalItem(url, query, prompt_tokens=len(tokenizer(query)["input_ids"]))
        for (url, query) in index
    ]

    @torch.no_grad()
    def predict(batch: list[EvalItem]) -> list[str]:
        inputs = collate([dataset[index[it.key]] for it in batch])
        new = system.generate(inputs, max_new_tokens=max_new_tokens)
        return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]

    predictions = run_generation(items, predict, out / "predictions.csv", max_batch=batch_size)
    references = getattr(cfg.data, split)
    if len(references) != 1:
        raise ValueError(f"scoring needs one reference file for split {split!r}, got {references}")
    score_files(
        predictions,
        references[0],
        out=out,
        protocol="grouped",
        n_boot=n_boot,
        run_name=cfg.experiment,
    )
    write_report(out)
    return out
