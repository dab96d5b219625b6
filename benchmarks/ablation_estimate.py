"""Estimate how long an ablation suite takes without running it (the full suite is ~1 hour).

    PYTHONPATH=src .venv/bin/python benchmarks/ablation_estimate.py configs/ablation/tiny.yaml

For each family it trains the baseline variant twice with few steps (K and 3K) and evaluates
with two pair limits, so that fixed costs (model build, JVM start-up, scoring) and per-step /
per-pair costs separate: ``t = fixed + rate * n``. It reports wall seconds and CPU seconds
(this process and its children: METEOR/PTB Java) and extrapolates to the suite's step counts,
pairs, variants and seeds. On 2 quiet cores the wall time lies between CPU/2 (both cores busy)
and CPU (one core busy; the tiny models measured here: wall ~ CPU); the wall time at the
current load is printed next to it.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

from panollava.config import load_config
from panollava.data.synth import split_counts, synthesize
from panollava.data.synth_captions import QUERIES
from panollava.evaluation.ablation import load_suite
from panollava.evaluation.run_eval import evaluate_run
from panollava.models.build import build_system
from panollava.training.trainer import run_training


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def _fit(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
    """``(fixed, rate)`` of the line through two measurements."""
    rate = (y1 - y0) / (x1 - x0)
    return y0 - rate * x0, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--steps", type=int, default=5, help="K: trains K and 3K steps")
    parser.add_argument("--pairs", type=int, default=7, help="P: evaluates P and 3P pairs")
    args = parser.parse_args()
    suite = load_suite(args.suite)
    tmp = Path(tempfile.mkdtemp(prefix="ablation_estimate_"))
    data = tmp / "data"
    synthesize(data, n=suite.synth.n, seed=suite.synth.seed, width=suite.synth.width)
    pairs = split_counts(suite.synth.n)["test"] * len(QUERIES)
    if suite.eval.limit:
        pairs = min(pairs, suite.eval.limit)
    tables = [f"data.{s}=[{data / f'{s}.tsv'}]" for s in ("train", "valid", "test")]
    total_wall = total_cpu = 0.0
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, family in suite.families.items():
        ovs = [o.replace("{data}", str(data)) for o in family.overrides]
        base = load_config(family.recipe, [*tables, *ovs, *family.variants[family.baseline]])
        steps = sum(s.max_steps or 0 for s in base.train.stages)
        n_stages = len(base.train.stages)
        points = []
        for k in (args.steps, 3 * args.steps):
            limit = [f"train.stages.{i}.max_steps={k}" for i in range(n_stages)]
            cfg = load_config(
                family.recipe, [*tables, *ovs, *limit, f"output_dir={tmp / name / str(k)}"]
            )
            run, wall, cpu = _timed(lambda cfg=cfg: run_training(cfg, build_system(cfg)))
            points.append((k * n_stages, wall, cpu, cfg, run))
        (k0, w0, c0, _, _), (k1, w1, c1, cfg, run) = points
        train_w, train_c = _fit(k0, w0, k1, w1), _fit(k0, c0, k1, c1)
        evals = []
        for p in (args.pairs, 3 * args.pairs):
            _, wall, cpu = _timed(
                lambda p=p, cfg=cfg, run=run: evaluate_run(
                    cfg,
                    run,
                    max_new_tokens=suite.eval.max_new_tokens,
                    batch_size=suite.eval.batch_size,
                    n_boot=suite.eval.bootstrap,
                    limit=p,
                    overwrite=True,
                )
            )
            evals.append((p, wall, cpu))
        (p0, ew0, ec0), (p1, ew1, ec1) = evals
        eval_w, eval_c = _fit(p0, ew0, p1, ew1), _fit(p0, ec0, p1, ec1)
        one_w = train_w[0] + train_w[1] * steps + eval_w[0] + eval_w[1] * pairs
        one_c = train_c[0] + train_c[1] * steps + eval_c[0] + eval_c[1] * pairs
        runs = len(family.variants) * len(suite.seeds)
        total_wall += one_w * runs
        total_cpu += one_c * runs
        print(
            f"{name}: train {train_c[0]:.1f} CPU-s fixed + {train_c[1]:.2f} CPU-s/step "
            f"(wall {train_w[0]:.1f} + {train_w[1]:.2f}/step); eval {eval_c[0]:.1f} CPU-s fixed "
            f"+ {eval_c[1]:.2f} CPU-s/pair (wall {eval_w[0]:.1f} + {eval_w[1]:.2f}/pair); "
            f"one run of {steps} steps, {pairs} pairs: {one_c:.0f} CPU-s ({one_w:.0f} s wall "
            f"now); {runs} runs"
        )
    print(
        f"suite {args.suite}: {total_cpu / 60:.0f} CPU-minutes -> between "
        f"{math.ceil(total_cpu / 2 / 60)} min (both cores busy) and {math.ceil(total_cpu / 60)} "
        f"min (one core busy) on 2 quiet cores; {total_wall / 60:.0f} min at the current load"
    )


if __name__ == "__main__":
    main()
