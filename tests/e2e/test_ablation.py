"""``panollava ablate configs/ablation/ci.yaml``: two configs x two seeds of the tiny PanoAdapt
stand-in on one synthetic set; results.md/csv hold mean ± CI over seeds and the paired-by-seed
test of the variant against the baseline; a second call reuses every run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panollava.cli import app
from panollava.evaluation import grid

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "configs" / "ablation" / "ci.yaml"
runner = CliRunner()


@pytest.mark.e2e
def test_ci_ablation_two_configs_two_seeds(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "ablation"
    result = runner.invoke(app, ["ablate", str(SUITE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("training into") == 4  # 2 variants x 2 seeds
    runs = sorted(p.name.rsplit("-", 1)[0] for p in (out / "runs").iterdir())
    assert runs == [
        "qwen2_5_vl-anyres_e2p-s0",
        "qwen2_5_vl-anyres_e2p-s1",
        "qwen2_5_vl-resize-s0",
        "qwen2_5_vl-resize-s1",
    ]
    with (out / "results.csv").open(newline="") as f:
        rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(f)}
    base, resize = rows["anyres_e2p", "CIDEr"], rows["resize", "CIDEr"]
    assert base["seeds"] == resize["seeds"] == "2"
    assert float(base["ci lo"]) <= float(base["mean"]) <= float(base["ci hi"])
    assert base["diff"] == "" and resize["baseline"] == "anyres_e2p"
    assert float(resize["diff"]) == pytest.approx(float(resize["mean"]) - float(base["mean"]))
    assert 0.0 <= float(resize["p"]) <= 1.0
    md = (out / "results.md").read_text()
    assert "## qwen2_5_vl (baseline: anyres_e2p)" in md and "±" in md and "p=" in md
    # the synthetic test split has scene graphs: grounded metrics and the seam subset flow in
    assert rows["resize", "grounded.object F1"]["baseline"] == "anyres_e2p"
    assert ("anyres_e2p", "grounded.seam recall") in rows
    assert "grounded.object F1" in md

    def no_model(*args, **kwargs):
        raise AssertionError("finished runs must be reused without loading a model")

    monkeypatch.setattr(grid, "build_system", no_model)
    monkeypatch.setattr(grid, "evaluate_run", no_model)
    again = runner.invoke(app, ["ablate", str(SUITE), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count(": skipped (finished with this config)") == 4


@pytest.mark.e2e
def test_ablate_names_bad_input(tmp_path: Path) -> None:
    seeds = runner.invoke(app, ["ablate", str(SUITE), "--out", str(tmp_path), "--seeds", "a"])
    assert seeds.exit_code == 2 and "--seeds takes comma-separated integers" in seeds.output
    missing = runner.invoke(app, ["ablate", str(tmp_path / "no.yaml"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "ablation suite not found" in missing.output
