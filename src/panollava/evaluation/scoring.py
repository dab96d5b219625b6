"""Scoring prediction files into a *run folder*: ``metrics.json`` + ``per_sample.csv``.

A run folder holds one or more runs (one per ``method`` of the predictions file):

* ``metrics.json``: protocol, inputs, versions, bootstrap settings and, under ``runs``, for each run
  its corpus metrics (SPICE ``null`` when unavailable, with the reason under ``unavailable``),
  95% bootstrap CIs (``ci95``) and counts.
* ``per_sample.csv``: one line per (run, sample) with the texts, every per-sample score and the
  BLEU/METEOR sufficient statistics, so CIs and paired tests can be recomputed later
  (:mod:`panollava.evaluation.compare`).
* when the references come with scene graphs (synthetic data, see
  :mod:`panollava.evaluation.grounded` for how they are found): grounded metrics per run under
  ``runs.<run>.grounded`` (with CIs), the chance level and the scene.json files under ``grounded``,
  and ``grounded.csv``: the per-(image, query) counts they are computed from.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from panollava.evaluation.bootstrap import bootstrap_ci
from panollava.evaluation.grounded import (
    CHANCE_METHOD,
    GROUNDED_FILE,
    GroundedSamples,
    SceneGraphs,
    chance_samples,
    find_scene_graphs,
    grounded_entry,
    grounded_samples,
    metric_definitions,
    read_grounded_csv,
    write_grounded_csv,
)
from panollava.evaluation.javatools import MeteorProcess, java_version
from panollava.evaluation.metrics import (
    ALL_METRICS,
    BLEU_STAT_COLUMNS,
    METEOR_N_STATS,
    CaptionScores,
    expand_metrics,
    score_tokenized,
    tokenize_samples,
)
from panollava.evaluation.samples import SampleSet, build_sample_sets
from panollava.evaluation.tables import TableError, read_predictions, read_references

__all__ = [
    "METRICS_FILE",
    "PER_SAMPLE_FILE",
    "LoadedRun",
    "load_run_dir",
    "score_files",
    "score_sample_sets",
    "write_run_dir",
]

METRICS_FILE = "metrics.json"
PER_SAMPLE_FILE = "per_sample.csv"
SCHEMA = "panollava.metrics/1"
PROTOCOL_NOTES = {
    "grouped": "one prediction per (image, query) scored against all its references",
    "per_row": "every reference row is a single-reference sample (published protocol); "
    "CIDEr's IDF is computed over rows",
}
METRIC_NOTES = {
    "BLEU": "pycocoevalcap BleuScorer, option='closest'; corpus score from summed statistics",
    "METEOR": "METEOR 1.5 jar shipped in pycocoevalcap, -l en -norm; corpus score from summed "
    "statistics",
    "ROUGE-L": "pycocoevalcap Rouge (beta 1.2); mean over samples",
    "CIDEr": "CIDEr-D as implemented by pycocoevalcap Cider (clipping, Gaussian length penalty "
    "sigma 6, x10); IDF over the scored samples; mean over samples",
    "SPICE": "SPICE 1.0 with Stanford CoreNLP 3.6.0; mean of per-sample F-scores",
    "tokenizer": "PTB tokenizer (stanford-corenlp-3.4.1), lower-cased, punctuation removed",
}


def score_sample_sets(
    sets: dict[str, SampleSet],
    *,
    metrics: Sequence[str] = ALL_METRICS,
    corenlp_dir: str | Path | None = None,
    meteor: MeteorProcess | None = None,
) -> dict[str, CaptionScores]:
    """Score every run; one tokenizer call and one METEOR JVM serve all runs.

    ``meteor``: a running METEOR process to use (left open); else one is started and closed.
    """
    wanted = expand_metrics(metrics)
    preds = [p for s in sets.values() for p in s.predictions]
    refs = [r for s in sets.values() for r in s.references]
    hyps_tok, refs_tok = tokenize_samples(preds, refs)
    own = meteor is None and "METEOR" in wanted
    if own:
        meteor = MeteorProcess()
    out = {}
    try:
        start = 0
        for run, samples in sets.items():
            stop = start + len(samples)
            out[run] = score_tokenized(
                hyps_tok[start:stop],
                refs_tok[start:stop],
                metrics=wanted,
                meteor=meteor,
                corenlp_dir=corenlp_dir,
            )
            start = stop
    finally:
        if own and meteor is not None:
            meteor.close()
    return out


def _versions() -> dict[str, str]:
    return {
        "panollava": version("panollava"),
        "pycocoevalcap": version("pycocoevalcap"),
        "java": java_version()[1],
        "python": platform.python_version(),
        "meteor": "meteor-1.5.jar (pycocoevalcap)",
        "tokenizer": "stanford-corenlp-3.4.1.jar PTBTokenizer (pycocoevalcap)",
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _run_entry(
    samples: SampleSet, scores: CaptionScores, ci: dict[str, tuple[float, float]]
) -> dict:
    metrics: dict[str, float | None] = {m: _finite(v) for m, v in scores.corpus.items()}
    for name in scores.unavailable:
        metrics[name] = None
    ordered = {m: metrics[m] for m in ALL_METRICS if m in metrics}
    return {
        "metrics": ordered,
        "ci95": {m: [_finite(lo), _finite(hi)] for m, (lo, hi) in ci.items()},
        "unavailable": dict(scores.unavailable),
        "counts": dict(samples.counts),
        "missing_examples": samples.missing[:20],
    }


def write_run_dir(
    out: str | Path,
    sets: dict[str, SampleSet],
    scores: dict[str, CaptionScores],
    *,
    protocol: str,
    inputs: dict[str, str | None],
    n_boot: int = 1000,
    seed: int = 0,
    scenes: SceneGraphs | None = None,
) -> dict:
    """Write ``metrics.json`` and ``per_sample.csv`` (+ the grounded metrics and ``grounded.csv``
    when ``scenes`` are given); returns the metrics.json content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for run, samples in sets.items():
        ci = bootstrap_ci(scores[run], samples.urls, n_boot=n_boot, seed=seed)
        runs[run] = _run_entry(samples, scores[run], ci)
    grounded = _grounded(out, sets, scenes, runs, n_boot=n_boot, seed=seed)
    meta = {
        "schema": SCHEMA,
        "protocol": protocol,
        "protocol_note": PROTOCOL_NOTES[protocol],
        "inputs": inputs,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "unit": "image (url)"},
        "versions": _versions(),
        "metric_notes": METRIC_NOTES,
        "runs": runs,
    }
    if grounded is not None:
        meta["grounded"] = grounded
    (out / METRICS_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    _write_per_sample(out / PER_SAMPLE_FILE, sets, scores)
    return meta


def _grounded(
    out: Path,
    sets: dict[str, SampleSet],
    scenes: SceneGraphs | None,
    runs: dict[str, dict],
    *,
    n_boot: int,
    seed: int,
) -> dict | None:
    """Grounded entries into ``runs``, ``grounded.csv``; returns metrics.json's ``grounded``."""
    path = out / GROUNDED_FILE
    if scenes is None:
        path.unlink(missing_ok=True)  # a stale file of an earlier scoring must not be read back
        return None
    per_run: dict[str, GroundedSamples] = {}
    for run, samples in sets.items():
        per_run[run] = grounded_samples(
            samples.urls, samples.queries, samples.predictions, scenes.scenes
        )
        runs[run]["grounded"] = grounded_entry(per_run[run], n_boot=n_boot, seed=seed)
    keys = list(dict.fromkeys(k for g in per_run.values() for k in g.keys))
    chance = chance_samples(keys, scenes.scenes, priors=scenes.priors)
    write_grounded_csv(path, per_run)
    return {
        "scene_graphs": [str(f.resolve()) for f in scenes.files],
        "chance": grounded_entry(chance, n_boot=n_boot, seed=seed),
        "chance_method": CHANCE_METHOD,
        "note": "counts per (image, query) in grounded.csv (tp/fp/fn of named objects, colours "
        "or shapes; *_ok/*_n of directions, relations, counts, background attributes, subset "
        "objects); parser and rules: panollava.evaluation.grounded",
        "definitions": metric_definitions(),
    }


def _write_per_sample(
    path: Path, sets: dict[str, SampleSet], scores: dict[str, CaptionScores]
) -> None:
    metric_cols = [m for m in ALL_METRICS if any(m in s.per_sample for s in scores.values())]
    header = ["run", "sample_id", "url", "query", "prediction", "references", *metric_cols]
    header += [f"bleu_{c}" for c in BLEU_STAT_COLUMNS] + ["meteor_stats"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for run, samples in sets.items():
            sc = scores[run]
            for i, sid in enumerate(samples.sample_ids):
                row = [run, sid, samples.urls[i], samples.queries[i], samples.predictions[i]]
                row.append(json.dumps(samples.references[i], ensure_ascii=False))
                row += [
                    repr(float(sc.per_sample[m][i])) if m in sc.per_sample else ""
                    for m in metric_cols
                ]
                bleu = sc.bleu_stats[i] if sc.bleu_stats is not None else [""] * 10
                row += [str(int(v)) if v != "" else "" for v in bleu]
                row.append(
                    " ".join(repr(float(v)) for v in sc.meteor_stats[i])
                    if sc.meteor_stats is not None
                    else ""
                )
                writer.writerow(row)


def score_files(
    predictions: str | Path,
    references: str | Path | None = None,
    *,
    out: str | Path,
    protocol: str = "grouped",
    metrics: Sequence[str] = ALL_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    allow_missing: bool = False,
    corenlp_dir: str | Path | None = None,
    run_name: str | None = None,
) -> dict:
    """Score a predictions file (see :mod:`panollava.evaluation.tables`) into run folder ``out``."""
    pred_table = read_predictions(predictions, default_run=run_name)
    ref_table = read_references(references) if references is not None else None
    sets = build_sample_sets(pred_table, ref_table, protocol=protocol, allow_missing=allow_missing)
    scores = score_sample_sets(sets, metrics=metrics, corenlp_dir=corenlp_dir)
    urls = [u for s in sets.values() for u in s.urls]
    scenes = find_scene_graphs(references if references is not None else predictions, urls)
    inputs = {
        "predictions": str(Path(predictions).resolve()),
        "references": str(Path(references).resolve()) if references is not None else None,
        "layout": pred_table.layout,
    }
    return write_run_dir(
        out, sets, scores, protocol=protocol, inputs=inputs, n_boot=n_boot, seed=seed, scenes=scenes
    )


@dataclass
class LoadedRun:
    """One run read back from a run folder."""

    name: str
    directory: Path
    protocol: str
    entry: dict  # the run's metrics.json entry
    samples: SampleSet
    scores: CaptionScores
    grounded: GroundedSamples | None = None  # per-(image, query) counts, when scene graphs exist
    grounded_chance: dict | None = None  # metrics.json's chance entry of the folder


def _float(text: str) -> float:
    return float(text) if text != "" else float("nan")


def load_run_dir(run_dir: str | Path) -> tuple[dict, dict[str, LoadedRun]]:
    """Read ``metrics.json`` and ``per_sample.csv`` of a run folder -> (meta, runs by name)."""
    run_dir = Path(run_dir)
    meta_path, samples_path = run_dir / METRICS_FILE, run_dir / PER_SAMPLE_FILE
    for p in (meta_path, samples_path):
        if not p.is_file():
            raise TableError(f"{p} not found: is {run_dir} a folder written by `panollava score`?")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema") != SCHEMA:
        raise TableError(f"{meta_path}: schema {meta.get('schema')!r}, expected {SCHEMA!r}")
    protocol = meta["protocol"]
    rows_by_run: dict[str, list[dict[str, str]]] = {name: [] for name in meta["runs"]}
    with samples_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["run"] not in rows_by_run:
                raise TableError(f"{samples_path}: run {row['run']!r} is not in {meta_path}")
            rows_by_run[row["run"]].append(row)
    grounded = {}
    if "grounded" in meta:
        if not (run_dir / GROUNDED_FILE).is_file():
            raise TableError(
                f"{run_dir / GROUNDED_FILE} not found but {meta_path} has grounded "
                "metrics: score the folder again"
            )
        grounded = read_grounded_csv(run_dir / GROUNDED_FILE)
    runs = {}
    for name, rows in rows_by_run.items():
        entry = meta["runs"][name]
        samples = SampleSet(run=name, protocol=protocol, counts=entry["counts"])
        for r in rows:
            samples.add(
                r["sample_id"], r["url"], r["query"], r["prediction"], json.loads(r["references"])
            )
        corpus = {m: v for m, v in entry["metrics"].items() if v is not None}
        per_sample = {m: np.array([_float(r[m]) for r in rows]) for m in corpus if m in rows[0]}
        bleu = None
        if rows and rows[0].get("bleu_testlen"):
            bleu = np.array([[float(r[f"bleu_{c}"]) for c in BLEU_STAT_COLUMNS] for r in rows])
        meteor = None
        if rows and rows[0].get("meteor_stats"):
            meteor = np.array([[float(v) for v in r["meteor_stats"].split()] for r in rows])
            assert meteor.shape[1] == METEOR_N_STATS
        scores = CaptionScores(
            corpus=corpus,
            per_sample=per_sample,
            bleu_stats=bleu,
            meteor_stats=meteor,
            unavailable=entry.get("unavailable", {}),
        )
        chance = meta.get("grounded", {}).get("chance")
        runs[name] = LoadedRun(
            name, run_dir, protocol, entry, samples, scores, grounded.get(name), chance
        )
    return meta, runs
