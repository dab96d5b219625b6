"""``panollava grid``: train and evaluate recipes in turn, then build the published-table layout.

Each recipe (a YAML plus overrides) gets one run folder ``DIR/runs/<label>-<digest>/`` where
``digest`` is the first 10 hex digits of its *training fingerprint* (``grid.json``): the resolved
config (less ``output_dir`` and the test tables, which only the evaluation reads) and the sha256
of the train/valid tables. A changed config therefore trains into a new folder and never mixes
with the old one. A recipe is skipped, without loading any model, when its folder has every
stage finished and both protocols' ``metrics.json`` carry the evaluation fingerprint this call
would produce (:mod:`panollava.evaluation.provenance`) and the same bootstrap setting; a partly
done recipe resumes (training mid-stage, generation row by row).

Tables (:func:`results_markdown`, :func:`results_csv_rows`): rows are (model, method), columns
BLEU-4/METEOR/ROUGE-L/CIDEr/SPICE with 95% image-bootstrap CIs, one table per protocol, then
paired bootstrap tests of every row against its family's ``native`` row (the family's first row
when it has none; the table says which).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panollava.config import PanoConfig, load_config
from panollava.evaluation.bootstrap import paired_bootstrap
from panollava.evaluation.compare import align_runs
from panollava.evaluation.provenance import FINGERPRINT_FILE, eval_fingerprint, fingerprint_diff
from panollava.evaluation.run_eval import evaluate_run
from panollava.evaluation.scoring import METRICS_FILE, LoadedRun, load_run_dir, score_files
from panollava.inference.predictor import resolve_device, resolve_dtype
from panollava.models.build import build_system
from panollava.training.run import RunState
from panollava.training.trainer import preflight, run_training

__all__ = [
    "GRID_FILE",
    "PROTOCOLS",
    "TABLE_METRICS",
    "EvalSettings",
    "GridEntry",
    "GridRow",
    "method_label",
    "model_label",
    "recipe_entries",
    "reference_rows",
    "results_csv_rows",
    "results_markdown",
    "run_entries",
    "run_entry",
    "run_grid",
    "train_fingerprint",
    "write_results",
]

GRID_FILE = "grid.json"
FORMAT = "panollava-grid/1"
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


@dataclass(frozen=True)
class EvalSettings:
    """How every recipe is evaluated (the generation part enters the eval fingerprint)."""

    max_new_tokens: int = 128
    batch_size: int = 16
    n_boot: int = 1000
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    overwrite: bool = False
    protocols: tuple[str, ...] = PROTOCOLS
    progress_every_s: float = 30.0  # outside a terminal: seconds between eval progress lines


@dataclass
class GridRow:
    """A finished recipe: its labels and, per protocol, the scored eval folder."""

    entry: GridEntry
    model: str
    method: str
    run_dir: Path
    eval_dirs: dict[str, Path] = field(default_factory=dict)
    state: str = ""


# ------------------------------------------------------------------ fingerprints and labels


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_fingerprint(cfg: PanoConfig) -> dict[str, Any]:
    """What decides a run's weights: the resolved config (less ``output_dir`` and test tables)
    and the content of the train/valid tables."""
    config = cfg.model_dump(mode="json", exclude={"output_dir": True, "data": {"test"}})
    tables = {str(p): _sha256_file(p) for p in [*cfg.data.train, *cfg.data.valid] if p.is_file()}
    return {"format": FORMAT, "config": config, "tables": tables}


def _digest(fingerprint: dict[str, Any]) -> str:
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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


# ------------------------------------------------------------------ running one recipe


def _generation(settings: EvalSettings) -> dict[str, Any]:
    """The ``generation`` part of the eval fingerprint exactly as ``evaluate_run`` records it for
    the transformers backend (device type and dtype as the Predictor resolves them)."""
    device = resolve_device(settings.device)
    return {
        "max_new_tokens": settings.max_new_tokens,
        "backend": "transformers",
        "device_type": device.type,
        "dtype": str(resolve_dtype(settings.dtype, device)),
        "limit": settings.limit,
    }


def _scored_with(folder: Path, fingerprint: dict[str, Any], n_boot: int) -> bool:
    path = folder / METRICS_FILE
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    return record.get("provenance") == fingerprint and record["bootstrap"]["n_boot"] == n_boot


def _eval_dirs(run_dir: Path, protocols: Sequence[str]) -> dict[str, Path]:
    grouped = run_dir / "eval" / "test"
    return {p: grouped if p == "grouped" else grouped / p for p in protocols}


def _score_per_row(cfg: PanoConfig, grouped: Path, out: Path, n_boot: int, name: str) -> None:
    """Score the grouped evaluation's predictions again under the per-row protocol."""
    fingerprint = json.loads((grouped / FINGERPRINT_FILE).read_text())
    score_files(
        grouped / "predictions.csv",
        cfg.data.test[0],
        out=out,
        protocol="per_row",
        n_boot=n_boot,
        run_name=name,
        allow_missing=fingerprint["generation"].get("limit") is not None,
    )
    record = json.loads((out / METRICS_FILE).read_text())
    record["provenance"] = fingerprint
    (out / METRICS_FILE).write_text(json.dumps(record, indent=2))


def _older_folder(runs: Path, label: str, digest: str) -> Path | None:
    """The newest other folder of ``label`` (a run of an earlier config), if any."""
    name = re.compile(re.escape(label) + r"-[0-9a-f]{10}")
    others = [p for p in runs.glob(f"{label}-*") if name.fullmatch(p.name)]
    others = [p for p in others if (p / GRID_FILE).is_file() and p.name != f"{label}-{digest[:10]}"]
    return max(others, key=lambda p: p.stat().st_mtime) if others else None


def _train(
    cfg: PanoConfig, entry: GridEntry, runs: Path, say: Callable[[str], None]
) -> tuple[Path, bool]:
    """The entry's run folder with every stage finished, and whether this call trained."""
    fingerprint = train_fingerprint(cfg)
    digest = _digest(fingerprint)
    run_dir = runs / f"{entry.label}-{digest[:10]}"
    names = [s.name for s in cfg.train.stages]
    if (run_dir / GRID_FILE).is_file() and RunState.load(run_dir, names).finished() == names:
        return run_dir, False
    older = _older_folder(runs, entry.label, digest)
    if run_dir.exists():
        say(f"resuming training in {run_dir}")
    elif older is not None:
        old = json.loads((older / GRID_FILE).read_text())
        changes = "; ".join(fingerprint_diff(old, fingerprint)[:5])
        say(f"config changed since {older.name} ({changes}): training {run_dir.name}")
    else:
        say(f"training into {run_dir}")
    preflight(cfg, run_dir=run_dir)  # tables and images before any model
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / GRID_FILE).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    t0 = time.perf_counter()
    run_training(cfg, build_system(cfg), run_dir=run_dir)
    say(f"trained in {time.perf_counter() - t0:.0f} s")
    return run_dir, True


def _evaluate(
    cfg: PanoConfig, row: GridRow, settings: EvalSettings, say: Callable[[str], None]
) -> None:
    grouped = row.run_dir / "eval" / "test"
    t0 = time.perf_counter()
    say(f"evaluating ({' + '.join(settings.protocols)})")
    evaluate_run(
        cfg,
        row.run_dir,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
        n_boot=settings.n_boot,
        limit=settings.limit,
        device=settings.device,
        dtype=settings.dtype,
        overwrite=settings.overwrite,
        progress_every_s=settings.progress_every_s,
    )
    if "per_row" in settings.protocols:
        _score_per_row(cfg, grouped, row.eval_dirs["per_row"], settings.n_boot, row.entry.label)
    say(f"evaluated in {time.perf_counter() - t0:.0f} s")


def run_entry(
    entry: GridEntry,
    out: Path,
    settings: EvalSettings,
    *,
    overrides: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> GridRow:
    """Train (or reuse) and evaluate (or reuse) one recipe; ``say`` gets each state change."""
    cfg = load_config(entry.recipe, [*entry.overrides, *overrides])
    cfg.output_dir = out / "runs"

    def tell(message: str) -> None:
        say(f"{entry.label}: {message}")

    run_dir, trained = _train(cfg, entry, out / "runs", tell)
    row = GridRow(entry, model_label(cfg), method_label(cfg), run_dir)
    row.eval_dirs = _eval_dirs(run_dir, settings.protocols)
    expected = eval_fingerprint(cfg, run_dir, split="test", generation=_generation(settings))
    scored = all(_scored_with(d, expected, settings.n_boot) for d in row.eval_dirs.values())
    if scored and not settings.overwrite:
        row.state = "trained and evaluated" if trained else "skipped (finished with this config)"
        if not trained:
            tell(row.state)
        return row
    _evaluate(cfg, row, settings, tell)
    row.state = "trained and evaluated" if trained else "evaluated (training reused)"
    return row


def run_entries(
    entries: Sequence[GridEntry],
    out: Path,
    settings: EvalSettings,
    *,
    overrides: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> list[GridRow]:
    """:func:`run_entry` for each entry in turn (labels must be unique)."""
    unknown = sorted(set(settings.protocols) - set(PROTOCOLS))
    if unknown or not settings.protocols:
        raise ValueError(f"protocols must be a non-empty subset of {PROTOCOLS}, got {unknown}")
    labels = [e.label for e in entries]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise ValueError(f"recipe labels must be unique, repeated: {repeated} (rename the files)")
    rows = []
    for k, entry in enumerate(entries, 1):
        rows.append(
            run_entry(
                entry,
                out,
                settings,
                overrides=overrides,
                say=lambda m, k=k: say(f"[{k}/{len(entries)}] {m}"),
            )
        )
    return rows


# ------------------------------------------------------------------ tables


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


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


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
        f"{len(rows)} recipes; 95% CIs from {n_boot} bootstrap resamples of the test images; "
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
        for i, test in enumerate(_paired(protocol_runs, refs, models, n_boot)):
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
    md = out / "results.md"
    md.write_text(results_markdown(rows, runs, n_boot=n_boot), encoding="utf-8")
    records = results_csv_rows(rows, runs, n_boot=n_boot)
    path = out / "results.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return md, path


def recipe_entries(recipes: Sequence[Path]) -> list[GridEntry]:
    """Grid entries of recipe files, labelled by file name (parent folder added on clashes)."""
    stems = [Path(r).stem for r in recipes]
    return [
        GridEntry(stem if stems.count(stem) == 1 else f"{Path(r).parent.name}_{stem}", Path(r))
        for r, stem in zip(recipes, stems, strict=True)
    ]


def run_grid(
    recipes: Sequence[Path],
    out: Path,
    settings: EvalSettings,
    *,
    overrides: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> tuple[list[GridRow], Path, Path]:
    """Train and evaluate ``recipes`` in turn into ``out`` and write the results tables."""
    missing = [str(r) for r in recipes if not Path(r).is_file()]
    if missing:
        raise FileNotFoundError(f"recipe(s) not found: {missing}")
    out.mkdir(parents=True, exist_ok=True)
    rows = run_entries(recipe_entries(recipes), out, settings, overrides=overrides, say=say)
    md, path = write_results(rows, out, n_boot=settings.n_boot)
    return rows, md, path
