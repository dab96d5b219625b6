"""Two processes on one run folder: the second stops with a clear message, nothing is doubled."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.config import load_config, save_config
from panollava.evaluation.generation import EvalItem, FileLockedError, run_generation

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def _hold_lock(target: Path) -> subprocess.Popen:
    """A second process holding ``target``'s lock until its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from panollava.evaluation.generation import exclusive
        with exclusive({str(target)!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_of_one_predictions_file_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "predictions.csv"
    holder = _hold_lock(out)
    try:
        with pytest.raises(FileLockedError, match=rf"pid {holder.pid} on"):
            run_generation([EvalItem("a.jpg", "q")], lambda b: ["x"] * len(b), out)
        assert not out.exists() or "x" not in out.read_text()
    finally:
        holder.communicate("")
    run_generation([EvalItem("a.jpg", "q")], lambda b: ["x"] * len(b), out)
    assert out.read_text().count("a.jpg") == 1


def test_second_eval_on_one_run_folder_exits_2_before_loading_a_model(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(REPO / "configs" / "panollava" / "tiny.yaml", [f"output_dir={tmp_path}"])
    save_config(cfg, run / "config.yaml")
    holder = _hold_lock(run / "eval" / "test" / "predictions.csv")
    try:
        result = CliRunner().invoke(app, ["eval", "--run", str(run)])
    finally:
        holder.communicate("")
    assert result.exit_code == 2, result.output
    assert f"pid {holder.pid}" in result.output
    assert "Traceback" not in result.output
