"""Each PanoAdapt family: tiny LoRA training (PanoRoPE + overlap loss) and evaluation, end to end."""

import csv
import json
import re
from pathlib import Path

import pytest

from panollava.config import load_config
from panollava.data.synth import synthesize
from panollava.evaluation.run_eval import evaluate_run
from panollava.models.build import build_system
from panollava.training.trainer import run_training

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_adapt")
    synthesize(out, n=10, seed=3, width=256, tokenizer=False)
    return out


def _tiny_config(synth: Path, out: Path, overrides: list[str]):
    """The tiny PanoAdapt recipe on the synthetic data, writing runs under ``out``."""
    return load_config(
        REPO / "configs" / "panoadapt_tiny" / "qwen2_5_vl_tiny.yaml",
        [
            f"data.train=[{synth / 'train.tsv'}]",
            f"data.valid=[{synth / 'valid.tsv'}]",
            f"data.test=[{synth / 'test.tsv'}]",
            f"output_dir={out}",
            *overrides,
        ],
    )


@pytest.mark.e2e
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "internvl", "gemma3"])
def test_family_trains_and_evaluates(synth, tmp_path, family):
    cfg = _tiny_config(
        synth,
        tmp_path,
        [
            f"model.family={family}",
            "train.stages.0.max_steps=2",
            "train.stages.0.batch_size=2",
            "train.log_every_n_steps=1",
        ],
    )
    system = build_system(cfg)
    assert system.allow_fp16 is (family != "gemma3")
    run_dir = run_training(cfg, system)
    state = json.loads((run_dir / "stages.json").read_text())
    assert state["stages"][0]["status"] == "done"
    rows = list(csv.DictReader((run_dir / "logs" / "lora" / "metrics.csv").open()))
    assert any(r.get("train/overlap") for r in rows)  # the overlap loss was on and logged
    out = evaluate_run(cfg, run_dir, max_new_tokens=4, batch_size=8, n_boot=10)
    preds = list(csv.DictReader((out / "predictions.csv").open()))
    assert preds and (out / "metrics.json").exists() and (out / "report.md").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("family", ["qwen2_5_vl", "gemma3"])
def test_native_mode_trains_and_evaluates(synth, tmp_path, family):
    """``native``: the ERP itself through the family's processor (no tiles, PanoRoPE, overlap)."""
    cfg = _tiny_config(
        synth,
        tmp_path,
        [
            f"model.family={family}",
            "views.strategy=native",
            "model.panorope=false",
            "train.stages.0.overlap_weight=0",
            "train.stages.0.max_steps=2",
            "train.stages.0.batch_size=2",
        ],
    )
    run_dir = run_training(cfg, build_system(cfg))
    out = evaluate_run(cfg, run_dir, max_new_tokens=3, batch_size=8, n_boot=5)
    assert list(csv.DictReader((out / "predictions.csv").open()))
    assert (out / "report.md").exists()


@pytest.mark.e2e
def test_qwen_config_with_q_proj_vision_lora_is_refused_naming_the_pattern(synth, tmp_path):
    """A q/k/v pattern matches nothing in Qwen's fused ``attn.qkv``: refused before training,
    naming the pattern (it is no longer dropped silently next to the live ``language`` group)."""
    pattern = r"model\.visual\..*\.(q_proj|k_proj|v_proj)"
    cfg = _tiny_config(synth, tmp_path, [f"train.stages.0.lora.targets=[language, '{pattern}']"])
    with pytest.raises(ValueError, match=re.escape(repr(pattern))):
        run_training(cfg, build_system(cfg))
