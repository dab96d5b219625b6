"""``eval`` resumes only predictions made by the same evaluation (fingerprint.json); anything that
shapes the answers — generation settings, views, the test table, the weights — refuses with the
difference named, and ``--overwrite`` starts again."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app

runner = CliRunner()
QUICK = ["--batch-size", "2", "--bootstrap", "0", "--limit", "3"]


@pytest.fixture
def run(panollava_run: Path, tmp_path: Path) -> Path:
    """A private copy of the trained tiny run (other tests evaluate the shared one)."""
    copy = tmp_path / "run"
    shutil.copytree(panollava_run, copy, ignore=shutil.ignore_patterns("eval"))
    return copy


def _eval(run: Path, *args: str):
    return runner.invoke(app, ["eval", "--run", str(run), *QUICK, *args])


def _predictions(run: Path) -> list[dict[str, str]]:
    with (run / "eval" / "test" / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.e2e
def test_changed_generation_setting_refuses_to_resume_and_overwrite_restarts(run: Path) -> None:
    first = _eval(run, "--max-new-tokens", "2")
    assert first.exit_code == 0, first.output
    assert len(_predictions(run)) == 3  # --limit 3
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["provenance"]["generation"]["max_new_tokens"] == 2
    assert set(metrics["provenance"]["weights"]) == {"vision", "resampler", "finetune"}

    again = _eval(run, "--max-new-tokens", "16")
    assert again.exit_code == 2
    assert "generation.max_new_tokens: 2 -> 16" in again.output
    assert "--overwrite" in again.output

    fresh = _eval(run, "--max-new-tokens", "16", "--overwrite")
    assert fresh.exit_code == 0, fresh.output
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert metrics["provenance"]["generation"]["max_new_tokens"] == 16


@pytest.mark.e2e
def test_changed_views_or_test_table_refuse_to_resume(run: Path) -> None:
    assert _eval(run, "--max-new-tokens", "2").exit_code == 0
    views = _eval(run, "--max-new-tokens", "2", "views.fov_deg=80")
    assert views.exit_code == 2 and "views.fov_deg: 90.0 -> 80.0" in views.output

    fingerprint = json.loads((run / "eval" / "test" / "fingerprint.json").read_text())
    (table,) = map(Path, fingerprint["tables"])
    edited = table.with_name("test_one_row_fewer.tsv")  # beside it: same relative image paths
    rows = table.read_text(encoding="utf-8").splitlines()
    edited.write_text("\n".join(rows[:-1]) + "\n", encoding="utf-8")
    changed = _eval(run, "--max-new-tokens", "2", f"data.test=[{edited}]")
    assert changed.exit_code == 2, changed.output
    assert "tables." in changed.output and "<absent>" in changed.output


@pytest.mark.e2e
def test_eval_without_config_names_the_fix(tmp_path: Path) -> None:
    result = _eval(tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "has no config.yaml" in result.output
