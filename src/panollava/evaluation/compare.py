"""Comparing run folders: a markdown metrics table with CIs, and paired bootstrap tests.

Runs scored against references with scene graphs also get the grounded table (headline grounded
metrics with CIs, plus the chance level) and paired tests of the grounded metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from panollava.evaluation.bootstrap import PairedResult, paired_bootstrap
from panollava.evaluation.grounded import HEADLINE, paired_grounded
from panollava.evaluation.metrics import ALL_METRICS, CaptionScores
from panollava.evaluation.scoring import LoadedRun, load_run_dir
from panollava.evaluation.tables import TableError

__all__ = [
    "align_runs",
    "collect_runs",
    "compare_markdown",
    "format_with_ci",
    "grounded_table",
    "metrics_table",
    "paired_markdown",
]


def collect_runs(run_dirs: Sequence[str | Path]) -> dict[str, LoadedRun]:
    """Runs of all folders, labelled by run name, or ``folder/run`` where names repeat."""
    loaded = [(Path(d), run) for d in run_dirs for run in load_run_dir(d)[1].values()]
    names = [run.name for _, run in loaded]
    out = {}
    for directory, run in loaded:
        label = run.name if names.count(run.name) == 1 else f"{directory.name}/{run.name}"
        if label in out:
            label = f"{directory}/{run.name}"
        out[label] = run
    return out


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def format_with_ci(value: float | None, ci: list | None, bold: bool = False) -> str:
    """``0.1234 [0.1000, 0.1500]`` (value in bold when ``bold``); ``–`` for no value."""
    text = _fmt(value)
    if bold:
        text = f"**{text}**"
    if value is not None and ci and ci[0] is not None:
        text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return text


def grounded_table(
    runs: dict[str, LoadedRun], *, metrics: tuple[str, ...] = HEADLINE, with_chance: bool = True
) -> str:
    """Markdown table of the grounded metrics (95% CIs) of the runs that have them, the best per
    column in bold, and a last row with the chance level; ``""`` when no run has them."""
    grounded = {k: r.entry["grounded"] for k, r in runs.items() if "grounded" in r.entry}
    if not grounded:
        return ""
    best = {}
    for m in metrics:
        values = [g["metrics"].get(m) for g in grounded.values()]
        values = [v for v in values if v is not None]
        best[m] = max(values) if len(values) > 1 else None
    header = ["run (grounded)", "pairs", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, g in grounded.items():
        cells = [label, str(g["counts"]["samples"])]
        for m in metrics:
            value = g["metrics"].get(m)
            bold = value is not None and value == best[m]
            cells.append(format_with_ci(value, g["ci95"].get(m), bold))
        lines.append("| " + " | ".join(cells) + " |")
    chance = next((r.grounded_chance for r in runs.values() if r.grounded_chance), None)
    if with_chance and chance is not None:
        cells = ["chance (random scene captions)", str(chance["counts"]["samples"])]
        cells += [format_with_ci(chance["metrics"].get(m), chance["ci95"].get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metrics_table(
    runs: dict[str, LoadedRun], *, with_ci: bool = True, grounded: bool = True
) -> str:
    """Markdown table: rows runs, columns metrics; 95% CIs; the best value per column among runs
    of the same protocol in bold (numbers of different protocols are not comparable). With
    ``grounded``, the grounded table (:func:`grounded_table`) follows when there is one."""
    metrics = [m for m in ALL_METRICS if any(m in r.entry["metrics"] for r in runs.values())]
    best, group_size = {}, {}
    for protocol in {r.protocol for r in runs.values()}:  # best among runs of one protocol
        group = [r for r in runs.values() if r.protocol == protocol]
        group_size[protocol] = len(group)
        for m in metrics:
            finite = [r.entry["metrics"].get(m) for r in group]
            finite = [v for v in finite if v is not None]
            best[protocol, m] = max(finite) if finite else None
    header = ["run", "protocol", "samples", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, run in runs.items():
        cells = [label, run.protocol, str(run.entry["counts"]["samples"])]
        for m in metrics:
            value = run.entry["metrics"].get(m)
            if value is None:
                cells.append("n/a" if m in run.entry.get("unavailable", {}) else "–")
                continue
            text = _fmt(value)
            if value == best[run.protocol, m] and group_size[run.protocol] > 1:
                text = f"**{text}**"
            ci = run.entry.get("ci95", {}).get(m)
            if with_ci and ci and ci[0] is not None:
                text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted(
        {f"{m}: {why}" for r in runs.values() for m, why in r.entry.get("unavailable", {}).items()}
    )
    if notes:
        lines += ["", *(f"n/a — {n}" for n in notes)]
    extra = grounded_table(runs) if grounded else ""
    if extra:
        lines += ["", "Grounded metrics (predictions parsed and checked against the scene graphs):"]
        lines += ["", extra]
    return "\n".join(lines)


def _subset(scores: CaptionScores, order: np.ndarray) -> CaptionScores:
    return CaptionScores(
        corpus=scores.corpus,
        per_sample={m: v[order] for m, v in scores.per_sample.items()},
        bleu_stats=None if scores.bleu_stats is None else scores.bleu_stats[order],
        meteor_stats=None if scores.meteor_stats is None else scores.meteor_stats[order],
        unavailable=scores.unavailable,
    )


def align_runs(a: LoadedRun, b: LoadedRun) -> tuple[CaptionScores, CaptionScores, list[str]]:
    """``b``'s scores reordered to ``a``'s samples; raises if they are not the same test set."""
    if a.protocol != b.protocol:
        raise TableError(f"protocols differ ({a.protocol} vs {b.protocol})")
    ids_a, ids_b = a.samples.sample_ids, b.samples.sample_ids
    if set(ids_a) != set(ids_b) or len(ids_a) != len(ids_b):
        only_a, only_b = set(ids_a) - set(ids_b), set(ids_b) - set(ids_a)
        raise TableError(
            f"not the same samples ({len(only_a)} only in {a.name}, {len(only_b)} only in "
            f"{b.name}, e.g. {sorted(only_a | only_b)[:3]})"
        )
    position = {sid: i for i, sid in enumerate(ids_b)}
    order = np.array([position[sid] for sid in ids_a])
    return a.scores, _subset(b.scores, order), a.samples.urls


def paired_markdown(
    name_a: str, a: LoadedRun, name_b: str, b: LoadedRun, *, n_boot: int = 1000, seed: int = 0
) -> str:
    """Markdown table of the paired bootstrap test ``a - b``."""
    scores_a, scores_b, urls = align_runs(a, b)
    results: list[PairedResult] = paired_bootstrap(
        scores_a, scores_b, urls, n_boot=n_boot, seed=seed
    )
    lines = [
        f"Paired bootstrap ({n_boot} image resamples, seed {seed}): **{name_a}** − **{name_b}** "
        f"on {len(urls)} samples / {len(set(urls))} images",
        "",
        "| metric | difference | 95% CI | p (two-sided) |",
        "|---|---|---|---|",
    ]
    if a.grounded is not None and b.grounded is not None:
        results += paired_grounded(
            a.grounded, b.grounded, n_boot=n_boot, seed=seed, metrics=HEADLINE
        )
    for r in results:
        lines.append(
            f"| {r.metric} | {r.difference:+.4f} | [{r.ci[0]:+.4f}, {r.ci[1]:+.4f}] | {r.p_value:.3f} |"
        )
    return "\n".join(lines)


def compare_markdown(
    run_dirs: Sequence[str | Path],
    *,
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> str:
    """The comparison report: metrics table, then paired tests of every run against ``reference``
    (default: the first run). Runs that cannot be paired are listed with the reason."""
    runs = collect_runs(run_dirs)
    parts = [metrics_table(runs)]
    if len(runs) < 2:
        return parts[0]
    ref_label = reference or next(iter(runs))
    if ref_label not in runs:
        raise TableError(f"reference run {ref_label!r} not found; runs: {list(runs)}")
    for label, run in runs.items():
        if label == ref_label:
            continue
        try:
            parts.append(
                paired_markdown(label, run, ref_label, runs[ref_label], n_boot=n_boot, seed=seed)
            )
        except TableError as exc:
            parts.append(f"No paired test {label} vs {ref_label}: {exc}")
    return "\n\n".join(parts)
