"""``panollava ablate SUITE --out DIR``: ablations with seeds on one synthetic data set.

A suite YAML (``configs/ablation/``) names the synthetic data, the seeds, and per family a base
recipe, shared overrides, a baseline variant and the variants (each a list of overrides). Every
(family, variant, seed) becomes one entry of the grid runner (:mod:`panollava.evaluation.grid`:
resumable, skipped by fingerprint), evaluated with the grouped protocol. ``{data}`` in an
override is the synthesized data folder.

``DIR/results.md`` / ``results.csv`` give, per family and variant, the mean over seeds with a
95% Student-t interval, and paired tests against the family's baseline over seeds (the same
seed trains both, so differences are paired by seed): mean difference, its 95% t interval and a
two-sided paired t-test p. Every numeric metric of the runs' ``metrics.json`` takes part
(:func:`run_metrics`), so metrics added later (grounded scores, seam/pole subsets) flow in.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from panollava.config import ConfigError
from panollava.data.synth import synthesize
from panollava.evaluation.bootstrap import paired_bootstrap
from panollava.evaluation.grid import EvalSettings, GridEntry, run_entries
from panollava.evaluation.grid_tables import save_results
from panollava.evaluation.grounded import HEADLINE as GROUNDED_HEADLINE
from panollava.evaluation.metrics import ALL_METRICS, CaptionScores
from panollava.evaluation.scoring import METRICS_FILE, PER_SAMPLE_FILE
from panollava.strict import StrictModel

__all__ = [
    "AblationRecord",
    "AblationSuite",
    "SeedStats",
    "ablation_markdown",
    "aggregate",
    "image_paired_tests",
    "load_suite",
    "mean_ci",
    "paired_seed_test",
    "run_ablation",
    "run_metrics",
    "suite_entries",
    "t_quantile",
    "t_two_sided_p",
]

HEADLINE = ("CIDEr", "BLEU-4", "METEOR", "ROUGE-L")  # caption metrics shown in results.md
# means of per-sample scores (per_sample.csv): testable by resampling images
IMAGE_TEST_METRICS = ("CIDEr",)
NOISE = 1e-6  # paired differences smaller than this count as zero (metrics are shown to 1e-4)
_NOT_SCORES = {"ci95", "counts", "unavailable", "missing_examples"}


class SynthSpec(StrictModel):
    n: int = Field(120, ge=3, description="panoramas (80/10/10 train/valid/test)")
    seed: int = 0
    width: int = Field(256, ge=64)


class EvalSpec(StrictModel):
    max_new_tokens: int = Field(32, ge=1)
    batch_size: int = Field(16, ge=1)
    bootstrap: int = Field(200, ge=0)
    limit: int | None = Field(None, ge=1)


class FamilySuite(StrictModel):
    recipe: Path
    overrides: list[str] = Field(default_factory=list)
    baseline: str
    variants: dict[str, list[str]]

    @model_validator(mode="after")
    def _baseline_is_a_variant(self) -> FamilySuite:
        if self.baseline not in self.variants:
            raise ValueError(f"baseline {self.baseline!r} is not one of {list(self.variants)}")
        return self


class AblationSuite(StrictModel):
    synth: SynthSpec = Field(default_factory=SynthSpec)
    seeds: list[int] = Field(min_length=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    families: dict[str, FamilySuite] = Field(min_length=1)


def load_suite(path: Path) -> AblationSuite:
    """Read and validate a suite YAML; recipe paths resolve against its folder."""
    if not path.is_file():
        raise ConfigError(f"ablation suite not found: {path}")
    try:
        suite = AblationSuite.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for family in suite.families.values():
        family.recipe = (path.parent / family.recipe).resolve()
    return suite


# ------------------------------------------------------------------ statistics over seeds


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p of Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if not math.isfinite(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:  # A = 2/pi (theta + sin cos (1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:  # A = sin (1 + 1/2 c^2 + 1*3/(2*4) c^4 + ...)
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        inside = math.sin(theta) * total
    return min(1.0, max(0.0, 1.0 - inside))


def t_quantile(level: float, df: int) -> float:
    """``t`` with two-sided coverage ``level`` (0.95 -> 12.706 for df 1), by bisection."""
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 1 - level else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class SeedStats:
    """Mean over seeds with a 95% t interval (``None`` with a single seed)."""

    n: int
    mean: float
    lo: float | None
    hi: float | None
    p: float | None = None  # paired tests: two-sided p of "mean difference = 0"


def mean_ci(values: Sequence[float], level: float = 0.95) -> SeedStats:
    """Mean of ``values`` and its Student-t interval."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return SeedStats(n, mean, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    return SeedStats(n, mean, mean - half, mean + half)


def paired_seed_test(a: Sequence[float], b: Sequence[float]) -> SeedStats:
    """Paired t-test of ``a - b`` over seeds: mean difference, 95% interval, two-sided p."""
    if len(a) != len(b):
        raise ValueError(f"paired test needs the same seeds, got {len(a)} and {len(b)} values")
    # differences below 1e-6 are no effect: BLEU-4 of captions without a 4-gram match is a
    # smoothing residue (1e-13 .. 1e-8); kept, they would read as certain effects (p = 0)
    diffs = [d if abs(d := x - y) >= NOISE else 0.0 for x, y in zip(a, b, strict=True)]
    stats = mean_ci(diffs)
    if stats.n < 2:
        return stats
    sd = math.sqrt(sum((d - stats.mean) ** 2 for d in diffs) / (stats.n - 1))
    if sd == 0:
        p = 1.0 if stats.mean == 0 else 0.0
    else:
        p = t_two_sided_p(stats.mean / (sd / math.sqrt(stats.n)), stats.n - 1)
    return SeedStats(stats.n, stats.mean, stats.lo, stats.hi, p)


# ------------------------------------------------------------------ aggregation and tables


def _numeric_leaves(tree: Any, prefix: str) -> dict[str, float]:
    """Dotted numeric leaves; CIs, counts and notes skipped at every depth, and a ``metrics``
    level adds nothing to the name (``grounded.metrics.object F1`` -> ``grounded.object F1``)."""
    if isinstance(tree, bool):
        return {}
    if isinstance(tree, int | float):
        return {prefix: float(tree)} if math.isfinite(tree) else {}
    if isinstance(tree, dict):
        out: dict[str, float] = {}
        for key, value in tree.items():
            if key in _NOT_SCORES:
                continue
            name = prefix if key == "metrics" else f"{prefix}.{key}" if prefix else str(key)
            out.update(_numeric_leaves(value, name))
        return out
    return {}


def run_metrics(metrics_json: dict[str, Any]) -> dict[str, float]:
    """Every numeric score of the (single) run of a ``metrics.json``: the caption metrics by
    name (``CIDEr``), other scored sections by dotted path (``grounded.seam recall``)."""
    runs = metrics_json["runs"]
    if len(runs) != 1:
        raise ValueError(f"expected one run in metrics.json, got {list(runs)}")
    return _numeric_leaves(next(iter(runs.values())), "")


@dataclass(frozen=True)
class AblationRecord:
    family: str
    variant: str
    seed: int
    metrics: dict[str, float]


def aggregate(
    records: Sequence[AblationRecord],
    baselines: dict[str, str],
    image_tests: dict[tuple[str, str, str], SeedStats] | None = None,
) -> list[dict[str, Any]]:
    """Long rows (family, variant, metric): mean ± CI over seeds and, for non-baseline
    variants, the paired-by-seed test against the family's baseline (and the images-paired
    test of :func:`image_paired_tests` where given)."""
    image_tests = image_tests or {}
    out = []
    groups: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    for r in records:
        groups.setdefault((r.family, r.variant), {})[r.seed] = r.metrics
    for (family, variant), by_seed in groups.items():
        base = groups[family, baselines[family]]
        keys = sorted({k for m in by_seed.values() for k in m}, key=_metric_order)
        for key in keys:
            seeds = sorted(s for s in by_seed if key in by_seed[s])
            stats = mean_ci([by_seed[s][key] for s in seeds])
            row = {"family": family, "variant": variant, "metric": key, "seeds": len(seeds)}
            row |= {"mean": stats.mean, "ci lo": stats.lo, "ci hi": stats.hi}
            row |= {"baseline": baselines[family], "diff": None, "diff lo": None}
            row |= {"diff hi": None, "p": None}
            paired = [s for s in seeds if key in base.get(s, {})]
            if variant != baselines[family] and paired:
                test = paired_seed_test(
                    [by_seed[s][key] for s in paired], [base[s][key] for s in paired]
                )
                row |= {"diff": test.mean, "diff lo": test.lo, "diff hi": test.hi, "p": test.p}
            img = image_tests.get((family, variant, key))
            row |= {
                "images diff": None if img is None else img.mean,
                "images diff lo": None if img is None else img.lo,
                "images diff hi": None if img is None else img.hi,
                "images p": None if img is None else img.p,
            }
            out.append(row)
    return out


def _per_sample(path: Path, metric: str) -> dict[str, tuple[str, float]]:
    """``sample_id -> (url, score)`` of ``metric`` from a run's ``per_sample.csv``."""
    with path.open(newline="", encoding="utf-8") as f:
        return {
            r["sample_id"]: (r["url"], float(r[metric]))
            for r in csv.DictReader(f)
            if r.get(metric, "") != ""
        }


def _seed_mean(files: Sequence[Path], metric: str) -> dict[str, tuple[str, float]]:
    tables = [_per_sample(f, metric) for f in files]
    common = set.intersection(*(set(t) for t in tables))
    return {
        sid: (tables[0][sid][0], sum(t[sid][1] for t in tables) / len(tables))
        for sid in sorted(common)
    }


def image_paired_tests(
    files: dict[tuple[str, str, int], Path],
    baselines: dict[str, str],
    *,
    metrics: Sequence[str] = IMAGE_TEST_METRICS,
    n_boot: int = 1000,
) -> dict[tuple[str, str, str], SeedStats]:
    """Per (family, variant, metric): paired bootstrap over test images of the seed-averaged
    per-sample scores, variant − baseline, on the seeds both have (``files``: per_sample.csv
    by (family, variant, seed)). Complements the seed t-test with the test-set noise."""
    out = {}
    for family, base in baselines.items():
        variants = dict.fromkeys(v for (f, v, _) in files if f == family and v != base)
        for variant in variants:
            seeds = sorted(
                s for (f, v, s) in files if (f, v) == (family, variant) and (f, base, s) in files
            )
            for metric in metrics:
                a = _seed_mean([files[family, variant, s] for s in seeds], metric)
                b = _seed_mean([files[family, base, s] for s in seeds], metric)
                ids = sorted(set(a) & set(b))
                if not ids:
                    continue
                va, vb = (np.array([x[sid][1] for sid in ids]) for x in (a, b))
                urls = [a[sid][0] for sid in ids]
                if len(set(urls)) < 2:  # one image: resampling images cannot vary anything
                    continue
                sa, sb = (
                    CaptionScores(corpus={metric: float(v.mean())}, per_sample={metric: v})
                    for v in (va, vb)
                )
                (test,) = paired_bootstrap(sa, sb, urls, n_boot=n_boot, seed=0)
                out[family, variant, metric] = SeedStats(
                    len(seeds), test.difference, test.ci[0], test.ci[1], test.p_value
                )
    return out


def _metric_order(key: str) -> tuple[int, str]:
    return (HEADLINE.index(key), "") if key in HEADLINE else (len(HEADLINE), key)


def _shown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Columns of results.md: the headline caption metrics, the headline grounded metrics and
    any other non-caption score (results.csv has every metric)."""
    keys = {r["metric"] for r in rows}
    grounded = [f"grounded.{h}" for h in GROUNDED_HEADLINE if f"grounded.{h}" in keys]
    other = sorted(k for k in keys if k not in ALL_METRICS and not k.startswith("grounded."))
    return [k for k in HEADLINE if k in keys] + grounded + other


def _pm(mean: float, lo: float | None, hi: float | None) -> str:
    return f"{mean:.4f}" if lo is None else f"{mean:.4f} ± {(hi - lo) / 2:.4f}"


def ablation_markdown(rows: Sequence[dict[str, Any]], *, seeds: Sequence[int]) -> str:
    """results.md: per family, mean ± 95% CI half-width over seeds, then paired tests."""
    lines = [
        "# Ablation results",
        "",
        f"Seeds {list(seeds)}; mean ± half-width of the 95% Student-t interval over seeds; paired "
        "tests: same seed, variant − baseline, mean difference [95% t interval] and two-sided "
        "paired t-test p (grouped protocol, synthetic test split).",
    ]
    for family in dict.fromkeys(r["family"] for r in rows):
        fam = [r for r in rows if r["family"] == family]
        keys = _shown(fam)
        variants = list(dict.fromkeys(r["variant"] for r in fam))
        cell = {(r["variant"], r["metric"]): r for r in fam}
        lines += ["", f"## {family} (baseline: {fam[0]['baseline']})", ""]
        lines += ["| variant | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
        for v in variants:
            cells = [
                _pm(c["mean"], c["ci lo"], c["ci hi"]) if (c := cell.get((v, k))) else "–"
                for k in keys
            ]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines += ["", "| variant − baseline | " + " | ".join(keys) + " |"]
        lines += ["|" + "---|" * (len(keys) + 1)]
        for v in variants:
            if v == fam[0]["baseline"]:
                continue
            cells = []
            for k in keys:
                c = cell.get((v, k))
                if c is None or c["diff"] is None:
                    cells.append("–")
                elif c["diff lo"] is None:
                    cells.append(f"{c['diff']:+.4f} (one seed: no test)")
                else:
                    cells.append(
                        f"{c['diff']:+.4f} [{c['diff lo']:+.4f}, {c['diff hi']:+.4f}] "
                        f"p={c['p']:.3f}"
                    )
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines += _image_test_lines(fam)
    return "\n".join(lines) + "\n"


def _image_test_lines(fam: Sequence[dict[str, Any]]) -> list[str]:
    tested = [r for r in fam if r.get("images diff") is not None]
    if not tested:
        return []
    lines = [
        "",
        "Images paired (per-sample scores averaged over the seeds, then a paired bootstrap "
        "over test images: the test-set noise, not the seed noise):",
        "",
        "| variant − baseline | metric | difference [95% CI] | p |",
        "|---|---|---|---|",
    ]
    for r in tested:
        lines.append(
            f"| {r['variant']} | {r['metric']} | {r['images diff']:+.4f} "
            f"[{r['images diff lo']:+.4f}, {r['images diff hi']:+.4f}] | {r['images p']:.3f} |"
        )
    return lines


# ------------------------------------------------------------------ running a suite


def _data(suite: AblationSuite, out: Path, say: Callable[[str], None]) -> Path:
    """The suite's synthetic data under ``out/data`` (made once; remade if its spec changed)."""
    data = out / "data"
    spec = suite.synth.model_dump()
    stamp = data / "synth.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == spec and (data / "test.tsv").is_file():
        return data
    say(f"synthesizing {suite.synth.n} panoramas into {data}")
    synthesize(data, n=suite.synth.n, seed=suite.synth.seed, width=suite.synth.width)
    stamp.write_text(json.dumps(spec))
    return data


def suite_entries(
    suite: AblationSuite, data: Path, seeds: Sequence[int]
) -> list[tuple[tuple[str, str, int], GridEntry]]:
    """``((family, variant, seed), entry)`` per run, labelled ``family-variant-sSEED``."""
    tables = [f"data.{s}=[{data / f'{s}.tsv'}]" for s in ("train", "valid", "test")]
    entries = []
    for name, family in suite.families.items():
        for variant, overrides in family.variants.items():
            for seed in seeds:
                ovs = [*tables, *family.overrides, *overrides, f"seed={seed}"]
                ovs = [o.replace("{data}", str(data)) for o in ovs]
                entry = GridEntry(f"{name}-{variant}-s{seed}", family.recipe, tuple(ovs))
                entries.append(((name, variant, seed), entry))
    return entries


def run_ablation(
    suite_path: Path,
    out: Path,
    *,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    limit: int | None = None,
    say: Callable[[str], None] = print,
) -> tuple[Path, Path]:
    """Run a suite into ``out``; returns (results.md, results.csv)."""
    suite = load_suite(suite_path)
    seeds = list(seeds or suite.seeds)
    out.mkdir(parents=True, exist_ok=True)
    data = _data(suite, out, say)
    settings = EvalSettings(
        max_new_tokens=suite.eval.max_new_tokens,
        batch_size=suite.eval.batch_size,
        n_boot=suite.eval.bootstrap,
        limit=limit or suite.eval.limit,
        protocols=("grouped",),
    )
    keyed = suite_entries(suite, data, seeds)
    rows = run_entries([e for _, e in keyed], out, settings, overrides=overrides, say=say)
    records, files = [], {}
    for key, row in zip([k for k, _ in keyed], rows, strict=True):
        metrics = json.loads((row.eval_dirs["grouped"] / METRICS_FILE).read_text())
        records.append(AblationRecord(*key, run_metrics(metrics)))
        files[key] = row.eval_dirs["grouped"] / PER_SAMPLE_FILE
    baselines = {n: f.baseline for n, f in suite.families.items()}
    images = image_paired_tests(files, baselines, n_boot=max(suite.eval.bootstrap, 1))
    table = aggregate(records, baselines, images)
    return save_results(out, ablation_markdown(table, seeds=seeds), table)
