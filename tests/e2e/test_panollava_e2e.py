"""End to end: synthetic data -> tiny PanoLLaVA, 3 stages -> resume -> eval -> report."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from panollava.config import load_config
from panollava.data.synth import synthesize
from panollava.evaluation.run_eval import evaluate_run
from panollava.models.build import build_system
from panollava.training.trainer import run_training

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n=20, seed=1, width=256)
    return out


def _cfg(data, out, extra=()):
    return load_config(
        REPO / "configs" / "panollava" / "tiny.yaml",
        [
            f"data.train=[{data / 'train.tsv'}]",
            f"data.valid=[{data / 'valid.tsv'}]",
            f"data.test=[{data / 'test.tsv'}]",
            f"model.tokenizer={data / 'tokenizer'}",
            f"output_dir={out}",
            "train.stages.0.max_steps=2",
            "train.stages.1.max_steps=3",
            "train.stages.2.max_steps=2",
            "train.stages.0.batch_size=2",
            "train.stages.1.batch_size=2",
            "train.stages.2.batch_size=2",
            "train.checkpoint_every_n_steps=1",
            "train.log_every_n_steps=1",
            *extra,
        ],
    )


@pytest.mark.e2e
def test_three_stages_resume_eval_report(synth, tmp_path):
    cfg = _cfg(synth, tmp_path / "runs")
    system = build_system(cfg)
    before = {k: v.detach().clone() for k, v in system.model.state_dict().items()}
    run_dir = run_training(cfg, system, stages=["vision"])
    # stage 1 changed the vision encoder (all blocks) and the resampler, nothing else
    after = load_file(str(run_dir / "vision" / "weights.safetensors"))
    assert after and all(k.startswith(("encoder.", "resampler.")) for k in after)
    assert any(not torch.equal(after[k], before[k]) for k in after)
    assert all(
        torch.equal(v, before[k])
        for k, v in system.model.state_dict().items()
        if k.startswith(("llm.", "projector."))
    )
    assert not any("lora" in k for k in system.model.state_dict())
    # the rest resumes in a fresh process-like system from the run folder
    run_training(cfg, build_system(cfg), run_dir=run_dir, resume=True)
    state = json.loads((run_dir / "stages.json").read_text())
    assert [s["status"] for s in state["stages"]] == ["done"] * 3
    finetune = load_file(str(run_dir / "finetune" / "weights.safetensors"))
    assert any("lora_" in k for k in finetune)  # LoRA exists only after finetune
    assert not any(
        "lora_" in k for k in load_file(str(run_dir / "resampler" / "weights.safetensors"))
    )
    for stage in ("vision", "resampler", "finetune"):
        rows = list(csv.DictReader((run_dir / "logs" / stage / "metrics.csv").open()))
        losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
        assert losses and all(math.isfinite(x) for x in losses)
    out = evaluate_run(cfg, run_dir, max_new_tokens=6, batch_size=8, n_boot=20)
    preds = list(csv.DictReader((out / "predictions.csv").open()))
    pairs = {(r["url"], r["query"]) for r in preds}
    assert len(preds) == len(pairs) > 0  # one generation per (image, query) pair
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "grouped"
    assert (out / "report.md").exists() and (out / "report.html").exists()
