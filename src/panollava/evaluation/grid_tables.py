"""The results tables of ``panollava grid`` in the layout of the published table.

Rows are (model, method) — the model from the config's system/family, the method from what the
config switches on (:func:`method_label`) — and columns BLEU-4/METEOR/ROUGE-L/CIDEr/SPICE with
95% image-bootstrap CIs, one table per protocol (per-row first: the published protocol), then
paired bootstrap tests of every row against its family's ``native`` row (the family's first row
when it has none; the page says which). SPICE is ``n/a`` with the reason when its CoreNLP jars
are absent.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panollava.config import PanoConfig
from panollava.evaluation.bootstrap import paired_bootstrap
from panollava.evaluation.compare import align_runs
from panollava.evaluation.scoring import LoadedRun, load_run_dir

__all__ = [
    "PROTOCOLS",
    "TABLE_METRICS",
    "GridEntry",
    "GridRow",
    "method_label",
    "model_label",
    "reference_rows",
    "results_csv_rows",
    "results_markdown",
    "save_results",
    "write_results",
]

PROTOCOLS = ("per_row", "grouped")  # per_row first: the protocol of the published numbers
TABLE_METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
PROTOCOL_TITLES = {
    "per_row": "per-row protocol (every reference row a single-reference sample; the published "
    "protocol)",
    "grouped": "grouped protocol (one prediction per image+query against all its references)",
}
LOSS_LABELS = {
    "vicreg_pairwise": "VICReg-pw",
    "vicreg_batchwise": "VICReg-bw",
    "densecl": "DenseCL",
    "dense_vicreg": "dense-VICReg",
}


@dataclass(frozen=True)
class GridEntry:
    """One recipe of a grid: ``label`` names its run folder (``DIR/runs/<label>-<digest>``)."""

    label: str
    recipe: Path
    overrides: tuple[str, ...] = ()


@dataclass
class GridRow:
    """A finished recipe: its labels and, per protocol, the scored eval folder."""

    entry: GridEntry
    model: str
    method: str
    run_dir: Path
    eval_dirs: dict[str, Path] = field(default_factory=dict)
    state: str = ""


def model_label(cfg: PanoConfig) -> str:
    """The model column: ``PanoLLaVA`` or the PanoAdapt family, ``(tiny)`` for stand-ins."""
    model = cfg.model
    if model is None:
        raise ValueError(f"{cfg.experiment}: the config has no model section")
    name = "PanoLLaVA" if model.system == "panollava" else model.family
    return f"{name} (tiny)" if model.source == "tiny" else name


def method_label(cfg: PanoConfig) -> str:
    """The method column, from what the config switches on: strategy, PanoRoPE / multi-view PE,
    stride_views stitching, and the overlap loss when a stage weighs it above zero."""
    parts = [cfg.views.strategy]
    model = cfg.model
    if model is not None and model.system == "panoadapt" and model.panorope:
        parts.append("+PanoRoPE")
    if model is not None and model.system == "panollava":
        if model.projector.pe:
            parts.append("+MV-PE")
        if model.projector.stitching != "concat":
            parts.append(f"+{model.projector.stitching}")
    if any(s.overlap_weight > 0 for s in cfg.train.stages):
        parts.append(f"+{LOSS_LABELS[cfg.overlap_loss.type]}")
    return " ".join(parts)


def reference_rows(rows: Sequence[tuple[str, str]]) -> dict[str, tuple[int, bool]]:
    """Per model (family): index of its reference row in ``rows`` (model, method) and whether
    it is a ``native`` row (``False``: the family's first row, as it has no native row)."""
    out: dict[str, tuple[int, bool]] = {}
    for i, (model, method) in enumerate(rows):
        if model not in out:
            out[model] = (i, method == "native")
        elif method == "native" and not out[model][1]:
            out[model] = (i, True)
    return out


def _cell(run: LoadedRun, metric: str) -> str:
    value = run.entry["metrics"].get(metric)
    if value is None:
        return "n/a" if metric in run.entry.get("unavailable", {}) else "–"
    ci = run.entry.get("ci95", {}).get(metric)
    if ci and ci[0] is not None:
        return f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"
    return f"{value:.4f}"


@dataclass(frozen=True)
class _Paired:
    difference: float
    ci: tuple[float, float]
    p_value: float


def _paired(
    runs: Sequence[LoadedRun], refs: dict[str, tuple[int, bool]], models: Sequence[str], n_boot: int
) -> list[dict[str, _Paired] | str | None]:
    """Per row: metric -> paired test against its reference row; ``None`` for the reference
    itself; a string when the two cannot be paired (different samples)."""
    out: list[dict[str, _Paired] | str | None] = []
    for i, run in enumerate(runs):
        ref = refs[models[i]][0]
        if ref == i:
            out.append(None)
            continue
        try:
            a, b, urls = align_runs(run, runs[ref])
        except ValueError as exc:  # TableError: not the same test samples
            out.append(f"no paired test: {exc}")
            continue
        if len(set(urls)) < 2:
            out.append("no paired test: one test image (resampling images needs two or more)")
            continue
        tests = paired_bootstrap(a, b, urls, n_boot=n_boot, seed=0)
        out.append({t.metric: _Paired(t.difference, t.ci, t.p_value) for t in tests})
    return out


def _protocol_runs(rows: Sequence[GridRow], protocol: str) -> list[LoadedRun]:
    return [next(iter(load_run_dir(r.eval_dirs[protocol])[1].values())) for r in rows]


def results_markdown(
    rows: Sequence[GridRow], runs: dict[str, list[LoadedRun]], *, n_boot: int
) -> str:
    """The results page: per protocol a (model × method) table with 95% CIs and the paired
    tests against each family's reference row. ``runs``: protocol -> one run per row."""
    models = [r.model for r in rows]
    refs = reference_rows([(r.model, r.method) for r in rows])
    lines = ["# Grid results", ""]
    lines += [
        f"{len(rows)} recipe(s); 95% CIs from {n_boot} bootstrap resamples of the test images; "
        "paired bootstrap tests (same resampled images for both rows) against each family's "
        "reference row.",
        "",
        "Reference rows: "
        + "; ".join(
            f"{m}: {rows[i].method} ({'native row' if native else 'first row, no native row'})"
            for m, (i, native) in refs.items()
        )
        + ".",
    ]
    for protocol, protocol_runs in runs.items():
        lines += ["", f"## {PROTOCOL_TITLES[protocol]}", ""]
        lines += ["| model | method | samples | " + " | ".join(TABLE_METRICS) + " |"]
        lines += ["|" + "---|" * (3 + len(TABLE_METRICS))]
        for row, run in zip(rows, protocol_runs, strict=True):
            cells = [row.model, row.method, str(run.entry["counts"]["samples"])]
            cells += [_cell(run, m) for m in TABLE_METRICS]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Paired tests ({protocol}): difference [95% CI], two-sided p", ""]
        lines += ["| model | method | vs | " + " | ".join(TABLE_METRICS) + " |"]
        lines += ["|" + "---|" * (3 + len(TABLE_METRICS))]
        tests = _paired(protocol_runs, refs, models, n_boot)
        if all(t is None for t in tests):
            lines.append(
                "| (every row is its family's reference) |" + " |" * (2 + len(TABLE_METRICS))
            )
        for i, test in enumerate(tests):
            if test is None:
                continue
            vs = rows[refs[models[i]][0]].method
            if isinstance(test, str):
                cells = [test] * len(TABLE_METRICS)
            else:
                cells = [
                    f"{t.difference:+.4f} [{t.ci[0]:+.4f}, {t.ci[1]:+.4f}] p={t.p_value:.3f}"
                    if (t := test.get(m)) is not None
                    else "n/a"
                    for m in TABLE_METRICS
                ]
            lines.append(
                f"| {rows[i].model} | {rows[i].method} | {vs} | " + " | ".join(cells) + " |"
            )
    notes = sorted(
        {
            f"{m}: {why}"
            for rs in runs.values()
            for r in rs
            for m, why in r.entry.get("unavailable", {}).items()
        }
    )
    if notes:
        lines += ["", *(f"n/a — {n}" for n in notes)]
    lines += ["", "| recipe | overrides | run folder | this call |", "|---|---|---|---|"]
    for r in rows:
        ovs = " ".join(r.entry.overrides) or "–"
        lines.append(f"| {r.entry.recipe} | {ovs} | {r.run_dir} | {r.state} |")
    return "\n".join(lines) + "\n"


def results_csv_rows(
    rows: Sequence[GridRow], runs: dict[str, list[LoadedRun]], *, n_boot: int
) -> list[dict[str, Any]]:
    """One CSV row per (protocol, model, method): values, CIs and the paired test columns."""
    models = [r.model for r in rows]
    refs = reference_rows([(r.model, r.method) for r in rows])
    out = []
    for protocol, protocol_runs in runs.items():
        tests = _paired(protocol_runs, refs, models, n_boot)
        for row, run, test in zip(rows, protocol_runs, tests, strict=True):
            record: dict[str, Any] = {
                "protocol": protocol,
                "model": row.model,
                "method": row.method,
                "recipe": str(row.entry.recipe),
                "label": row.entry.label,
                "samples": run.entry["counts"]["samples"],
                "reference": rows[refs[row.model][0]].method,
            }
            for m in TABLE_METRICS:
                ci = run.entry.get("ci95", {}).get(m) or [None, None]
                record |= {m: run.entry["metrics"].get(m), f"{m} lo": ci[0], f"{m} hi": ci[1]}
                t = test.get(m) if isinstance(test, dict) else None
                record |= {
                    f"{m} diff": None if t is None else t.difference,
                    f"{m} diff lo": None if t is None else t.ci[0],
                    f"{m} diff hi": None if t is None else t.ci[1],
                    f"{m} p": None if t is None else t.p_value,
                }
            out.append(record)
    return out


def write_results(rows: Sequence[GridRow], out: Path, *, n_boot: int) -> tuple[Path, Path]:
    """Write ``out/results.md`` and ``out/results.csv`` for finished rows."""
    protocols = [p for p in PROTOCOLS if all(p in r.eval_dirs for r in rows)]
    runs = {p: _protocol_runs(rows, p) for p in protocols}
    return save_results(
        out,
        results_markdown(rows, runs, n_boot=n_boot),
        results_csv_rows(rows, runs, n_boot=n_boot),
    )


def save_results(out: Path, markdown: str, records: Sequence[dict]) -> tuple[Path, Path]:
    """``out/results.md`` (the page) and ``out/results.csv`` (one row per record)."""
    md = out / "results.md"
    md.write_text(markdown, encoding="utf-8")
    path = out / "results.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return md, path
