"""The main job on the embedded default (``make demo``): synthesize panoramas, train a tiny
PanoLLaVA through its three stages on CPU, evaluate it on the synthetic test split, compare
it with the image-blind baseline on the same data, and write the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from panollava.config import load_config
from panollava.data.synth import SceneOptions, synthesize
from panollava.evaluation.baseline import run_blind_baseline
from panollava.evaluation.run_eval import evaluate_run
from panollava.models.build import build_system
from panollava.training.trainer import run_training

__all__ = ["run_demo"]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "panollava" / "demo.yaml"
# Larger objects and no small ones (4-7° radius: 4-7 px in a 64-px 100° tile, below what 8-px
# patches resolve): scenes the tiny model can see; blind baseline and chance use the same.
DEMO_SCENES = SceneOptions(object_scale=1.75, small_share=0.0)
METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
GROUNDED = ("object F1", "colour F1", "shape F1")


def _grounded_cell(grounded: dict, metric: str) -> str:
    value, ci = grounded["metrics"].get(metric), grounded.get("ci95", {}).get(metric)
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _metrics(eval_dir: Path, run: str | None = None) -> dict:
    runs = json.loads((eval_dir / "metrics.json").read_text())["runs"]
    return runs[run] if run else next(iter(runs.values()))


def run_demo(
    out: Path,
    *,
    n: int = 1500,
    seed: int = 0,
    scenes: SceneOptions = DEMO_SCENES,
    overrides: list[str] | None = None,
) -> dict:
    """Run the demo into ``out``; returns the metrics of the model and of the blind baseline."""

    console = Console(stderr=True)
    t0 = time.perf_counter()
    out = Path(out).resolve()
    data = out / "data"
    result = synthesize(data, n=n, seed=seed, width=512, options=scenes)
    console.print(
        f"[bold]1/4[/] {sum(result.images.values())} synthetic panoramas in "
        f"{result.seconds:.0f} s -> {data}"
    )
    cfg = load_config(
        CONFIG,
        [
            f"data.train=[{data / 'train.tsv'}]",
            f"data.valid=[{data / 'valid.tsv'}]",
            f"data.test=[{data / 'test.tsv'}]",
            f"model.tokenizer={data / 'tokenizer'}",
            f"output_dir={out / 'runs'}",
            f"seed={seed}",
            *(overrides or []),
        ],
    )
    console.print(
        "[bold]2/4[/] training the tiny PanoLLaVA: stages "
        + " -> ".join(s.name for s in cfg.train.stages)
    )
    run_dir = run_training(cfg, build_system(cfg))
    console.print(f"[bold]3/4[/] evaluating {run_dir} on the test split")
    eval_dir = evaluate_run(cfg, run_dir, max_new_tokens=40, batch_size=32)
    console.print("[bold]4/4[/] image-blind baseline on the same data")
    blind_dir = out / "blind"
    run_blind_baseline(data / "train.tsv", data / "test.tsv", out=blind_dir)
    model, blind = _metrics(eval_dir), _metrics(blind_dir / "grouped")
    chance = json.loads((eval_dir / "metrics.json").read_text())["grounded"]["chance"]
    table = Table(
        title=f"synthetic test split, grouped protocol ({time.perf_counter() - t0:.0f} s); "
        "grounded = read against the scene graphs"
    )
    table.add_column("method")
    for m in (*METRICS, *GROUNDED):
        table.add_column(m if m in METRICS else f"{m} (grounded)", justify="right")
    for label, entry in (
        ("tiny PanoLLaVA (anyres_e2p)", model),
        ("blind baseline (no image)", blind),
        ("chance (random scene captions)", {"grounded": chance}),
    ):
        text = [f"{entry['metrics'][m]:.4f}" if "metrics" in entry else "-" for m in METRICS]
        text += [_grounded_cell(entry["grounded"], m) for m in GROUNDED]
        table.add_row(label, *text)
    Console(width=max(Console().width, 150)).print(table)  # all columns readable in logs too
    f1 = {
        "model": model["grounded"]["metrics"].get("object F1"),
        "blind": blind["grounded"]["metrics"].get("object F1"),
        "chance": chance["metrics"].get("object F1"),
    }
    text = {k: "n/a" if v is None else f"{v:.3f}" for k, v in f1.items()}
    times = "n/a"
    if f1["model"] is not None and f1["blind"]:
        times = f"{f1['model'] / f1['blind']:.1f}x"
    console.print(
        f"grounded object F1 (colour and shape named right): model {text['model']} = {times} "
        f"the blind baseline ({text['blind']}); chance {text['chance']}",
        soft_wrap=True,
    )
    summary = {
        "model": model["metrics"],
        "blind": blind["metrics"],
        "grounded": {
            "model": model["grounded"]["metrics"],
            "blind": blind["grounded"]["metrics"],
            "chance": chance["metrics"],
        },
        "run_dir": str(run_dir),
        "eval_dir": str(eval_dir),
        "seconds": time.perf_counter() - t0,
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"report: {eval_dir / 'report.md'}")
    image = next(iter(sorted((data / "test").glob("*.jpg"))), None)
    console.print(
        "next, with this run:\n"
        f"  panollava infer --run {run_dir} --image {image} --query 'what is there?'\n"
        f"  panollava serve --run {run_dir}        # web demo on http://127.0.0.1:8000\n"
        f"  panollava export --run {run_dir} --out {out / 'export'}",
        highlight=False,
        soft_wrap=True,
    )
    return summary
