"""Under ``nohup … > log`` (no terminal) training and evaluation still report progress with an
ETA: both commands run here with their stderr on a pipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_train_and_eval_write_progress_lines_with_eta_to_a_pipe(tmp_path: Path) -> None:
    from panollava.data.synth import synthesize

    data = tmp_path / "data"
    synthesize(data, n=12, seed=3, width=256, tokenizer=True)
    steps = [f"train.stages.{i}.max_steps=2" for i in range(3)]
    train = subprocess.run(
        [
            sys.executable, "-m", "panollava.cli", "train",
            str(REPO / "configs" / "panollava" / "tiny.yaml"),
            f"data.train=[{data / 'train.tsv'}]", "data.valid=[]",
            f"data.test=[{data / 'test.tsv'}]", f"model.tokenizer={data / 'tokenizer'}",
            f"output_dir={tmp_path / 'runs'}", "train.progress_every_s=0", *steps,
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert "train vision: 1/2 steps (50.0%)" in train.stderr
    assert "train finetune: 2/2 steps (100.0%)" in train.stderr and "ETA" in train.stderr
    (run,) = (tmp_path / "runs").glob("*/*")
    evaluate = subprocess.run(
        [
            sys.executable, "-m", "panollava.cli", "eval", "--run", str(run), "--limit", "3",
            "--batch-size", "1", "--max-new-tokens", "4", "--bootstrap", "0",
            "--progress-every", "0",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert "eval test: 1/3 pairs (33.3%)" in evaluate.stderr and "ETA" in evaluate.stderr
    assert "scoring" in evaluate.stderr  # the scoring stages are announced too
    assert "CIDEr" in evaluate.stdout  # the metrics table at the end
    shutil.rmtree(tmp_path / "runs")
