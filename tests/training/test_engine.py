"""The training engine end to end on a toy system: stages, trainable-only checkpoints, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from panollava.training.trainer import run_training

sys.path.insert(0, str(Path(__file__).parent))
from toy_system import ToySystem, toy_config


def test_stages_run_in_order_and_record_progress(tmp_path):
    system = ToySystem()
    before = {k: v.clone() for k, v in system.model.state_dict().items()}
    run_dir = run_training(toy_config(tmp_path), system)
    state = json.loads((run_dir / "stages.json").read_text())
    assert [(s["name"], s["status"]) for s in state["stages"]] == [
        ("encoder", "done"),
        ("head", "done"),
    ]
    assert state["stages"][0]["steps"] == 6 and state["stages"][1]["steps"] == 16
    enc = load_file(str(run_dir / "encoder" / "weights.safetensors"))
    assert set(enc) == {"encoder.weight", "encoder.bias"}  # trainable weights only
    head = load_file(str(run_dir / "head" / "weights.safetensors"))
    assert set(head) == {"head.1.weight", "head.1.bias"}
    assert not torch.equal(enc["encoder.weight"], before["encoder.weight"])
    # Stage 2 trained only the head: the encoder stays at its stage-1 weights.
    assert torch.equal(system.model.encoder.weight, enc["encoder.weight"])
    assert (run_dir / "config.yaml").exists()
    metrics = (run_dir / "logs" / "encoder" / "metrics.csv").read_text()
    assert "train/loss" in metrics


def test_stage_subset_and_rerun_skips_finished(tmp_path):
    run_dir = run_training(toy_config(tmp_path), ToySystem(), stages=["encoder"])
    state = json.loads((run_dir / "stages.json").read_text())
    assert [s["status"] for s in state["stages"]] == ["done", "pending"]
    system = ToySystem()
    run_training(toy_config(tmp_path), system, run_dir=run_dir, resume=True)
    enc = load_file(str(run_dir / "encoder" / "weights.safetensors"))
    assert torch.equal(system.model.encoder.weight, enc["encoder.weight"])  # loaded, not retrained
    with pytest.raises(ValueError, match="unknown stages"):
        run_training(toy_config(tmp_path), ToySystem(), stages=["nope"])


@pytest.mark.slow
def test_kill_mid_stage_and_resume_gives_identical_weights(tmp_path):
    script = Path(__file__).parent / "toy_system.py"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref_dir = tmp_path / "ref" / "run"
    subprocess.run([sys.executable, str(script), str(ref_dir)], check=True, env=env, timeout=300)
    run_dir = tmp_path / "killed" / "run"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run_dir), "0.15"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = run_dir / "head" / "last.ckpt"
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline:  # mid-way through stage 2
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((run_dir / "stages.json").read_text())
    assert state["stages"][1]["status"] == "running", "the kill must land mid-stage"
    subprocess.run([sys.executable, str(script), str(run_dir)], check=True, env=env, timeout=300)
    for stage in ("encoder", "head"):
        ref = load_file(str(ref_dir / stage / "weights.safetensors"))
        got = load_file(str(run_dir / stage / "weights.safetensors"))
        for k in ref:
            assert torch.equal(ref[k], got[k]), (stage, k)


@pytest.mark.slow
def test_ddp_on_cpu_with_two_gloo_processes(tmp_path):
    script = Path(__file__).parent / "toy_system.py"
    run_dir = tmp_path / "ddp" / "run"
    out = subprocess.run(
        [sys.executable, str(script), str(run_dir), "--ddp"],
        env=dict(os.environ),
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    state = json.loads((run_dir / "stages.json").read_text())
    # 64 samples sharded over 2 ranks: 32 per rank / batch 4 = 8 optimiser steps for "head".
    assert [(s["status"], s["steps"]) for s in state["stages"]] == [("done", 6), ("done", 8)]
    assert (run_dir / "head" / "weights.safetensors").exists()
    assert not list((tmp_path / "ddp").glob("2*")), "rank 1 must not create its own run folder"
