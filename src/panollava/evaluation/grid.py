"""``panollava grid``: train and evaluate recipes in turn, then build the published-table layout.

Each recipe (a YAML plus overrides) gets one run folder ``DIR/runs/<label>-<digest>/`` where
``digest`` is the first 10 hex digits of its *training fingerprint* (``grid.json``): the resolved
config (less ``output_dir`` and the test tables, which only the evaluation reads) and the sha256
of the train/valid tables. A changed config therefore trains into a new folder and never mixes
with the old one. A recipe is skipped, without loading any model, when its folder has every
stage finished and both protocols' ``metrics.json`` carry the evaluation fingerprint this call
would produce (:mod:`panollava.evaluation.provenance`) and the same bootstrap setting; a partly
done recipe resumes (training mid-stage, generation row by row). Each recipe is scored with
both protocols (grouped in ``eval/test``, per-row in ``eval/test/per_row``);
:mod:`panollava.evaluation.grid_tables` builds ``DIR/results.md`` and ``results.csv``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panollava.config import PanoConfig, load_config
from panollava.evaluation.grid_tables import (
    PROTOCOLS,
    GridEntry,
    GridRow,
    method_label,
    model_label,
    write_results,
)
from panollava.evaluation.provenance import FINGERPRINT_FILE, eval_fingerprint
from panollava.evaluation.run_eval import evaluate_run
from panollava.evaluation.scoring import METRICS_FILE, score_files
from panollava.fileutil import sha256_file
from panollava.inference.predictor import resolve_device, resolve_dtype
from panollava.models.build import build_system
from panollava.training.run import RunState
from panollava.training.trainer import preflight, run_training

__all__ = [
    "GRID_FILE",
    "EvalSettings",
    "GridEntry",
    "GridRow",
    "config_changes",
    "recipe_entries",
    "run_entries",
    "run_entry",
    "run_grid",
    "train_fingerprint",
]

GRID_FILE = "grid.json"
FORMAT = "panollava-grid/1"


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


# ------------------------------------------------------------------ fingerprints


def train_fingerprint(cfg: PanoConfig) -> dict[str, Any]:
    """What decides a run's weights: the resolved config (less ``output_dir`` and test tables)
    and the content of the train/valid tables."""
    config = cfg.model_dump(mode="json", exclude={"output_dir": True, "data": {"test"}})
    tables = {str(p): sha256_file(p) for p in [*cfg.data.train, *cfg.data.valid] if p.is_file()}
    return {"format": FORMAT, "config": config, "tables": tables}


def _digest(fingerprint: dict[str, Any]) -> str:
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted ``key: value`` of a JSON tree; list items by index (``train.stages.0.lr``)."""
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else None
    )
    if items is None:
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every dotted key (list items by index) whose value differs."""
    a, b = _leaves(old), _leaves(new)
    return [
        f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, "<absent>") != b.get(key, "<absent>")
    ]


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
        changes = "; ".join(config_changes(old, fingerprint)[:5])
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
    for entry in entries:  # every config is valid before the first one trains for hours
        load_config(entry.recipe, [*entry.overrides, *overrides])
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
