"""``panollava grid`` on two tiny PanoAdapt recipes (native and anyres_e2p + PanoRoPE + VICReg):
results.md/csv in the published layout with CIs and a paired test against the native row; a
second call skips both recipes without loading a model; a changed override trains again."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from panollava.cli import app
from panollava.data.synth import synthesize
from panollava.evaluation import grid

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "panoadapt_tiny" / "qwen2_5_vl_tiny.yaml"
runner = CliRunner()
QUICK = ["--max-new-tokens", "6", "--bootstrap", "50", "--batch-size", "8"]  # 3 test images


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """Synthetic data, two recipe files (native, anyres_e2p) and the shared overrides."""
    tmp = tmp_path_factory.mktemp("grid")
    data = tmp / "data"
    synthesize(data, n=30, seed=5, width=256, tokenizer=False)
    base = yaml.safe_load(TINY.read_text())
    native = yaml.safe_load(TINY.read_text())
    native["views"] = {"strategy": "native", "tile_size": 56}
    native["model"]["panorope"] = False
    native["train"]["stages"][0]["overlap_weight"] = 0.0
    recipes = []
    for name, cfg in (("qwen_native", native), ("qwen_anyres_e2p", base)):
        path = tmp / "recipes" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        recipes.append(str(path))
    overrides = [
        f"data.train=[{data / 'train.tsv'}]",
        f"data.valid=[{data / 'valid.tsv'}]",
        f"data.test=[{data / 'test.tsv'}]",
        "train.stages.0.max_steps=2",
        "train.stages.0.batch_size=2",
    ]
    return tmp / "out", recipes, overrides


def _grid(out: Path, *args: str):
    return runner.invoke(app, ["grid", *args, "--out", str(out), *QUICK])


@pytest.mark.e2e
def test_grid_tables_skip_and_rerun(setup, monkeypatch) -> None:
    out, recipes, overrides = setup
    first = _grid(out, *recipes, *overrides)
    assert first.exit_code == 0, first.output
    assert first.output.count("training into") == 2

    md = (out / "results.md").read_text()
    assert "qwen2_5_vl (tiny)" in md and "| native |" in md
    assert "anyres_e2p +PanoRoPE +VICReg-pw" in md
    assert "qwen2_5_vl (tiny): native (native row)" in md
    assert "## per-row protocol" in md and "## grouped protocol" in md
    assert "n/a — SPICE" in md  # no CoreNLP jars here: SPICE shown as n/a with the reason
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["protocol"], r["method"]) for r in rows] == [
        ("per_row", "native"),
        ("per_row", "anyres_e2p +PanoRoPE +VICReg-pw"),
        ("grouped", "native"),
        ("grouped", "anyres_e2p +PanoRoPE +VICReg-pw"),
    ]
    for r in rows:  # every CIDEr has a 95% CI around it (3 test images resampled)
        assert float(r["CIDEr lo"]) <= float(r["CIDEr"]) <= float(r["CIDEr hi"])
        assert r["SPICE"] == ""
    assert any(float(r["ROUGE-L lo"]) < float(r["ROUGE-L hi"]) for r in rows)
    tested = rows[1]  # anyres_e2p against the native row, paired on the same samples
    assert tested["reference"] == "native"
    assert (
        float(tested["CIDEr diff lo"])
        <= float(tested["CIDEr diff"])
        <= float(tested["CIDEr diff hi"])
    )
    assert 0.0 <= float(tested["CIDEr p"]) <= 1.0
    assert rows[0]["CIDEr p"] == ""  # the reference row is not tested against itself
    assert "| qwen2_5_vl (tiny) | anyres_e2p +PanoRoPE +VICReg-pw | native |" in md

    def no_model(*args, **kwargs):
        raise AssertionError("a finished recipe must be skipped without loading a model")

    monkeypatch.setattr(grid, "build_system", no_model)
    monkeypatch.setattr(grid, "evaluate_run", no_model)
    again = _grid(out, *recipes, *overrides)
    assert again.exit_code == 0, again.output
    assert again.output.count(": skipped (finished with this config)") == 2
    monkeypatch.undo()

    changed = _grid(out, recipes[0], *overrides, "train.stages.0.lr=0.002")
    assert changed.exit_code == 0, changed.output
    assert "config changed since qwen_native-" in changed.output
    assert "config.train.stages.0.lr: 0.001 -> 0.002" in changed.output
    assert len(list((out / "runs").glob("qwen_native-*"))) == 2  # the old run is kept


@pytest.mark.e2e
def test_grid_input_mistakes_are_clear_errors(tmp_path: Path) -> None:
    none = runner.invoke(app, ["grid", "seed=1", "--out", str(tmp_path)])
    assert none.exit_code == 2 and "at least one recipe" in none.output
    missing = runner.invoke(app, ["grid", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    bad = runner.invoke(app, ["grid", str(TINY), str(TINY), "--out", str(tmp_path), "x.y=1"])
    assert bad.exit_code == 2 and "unique" in bad.output  # the same recipe twice
    typo = runner.invoke(app, ["grid", str(TINY), "--out", str(tmp_path), "views.nope=1"])
    assert typo.exit_code == 2 and "views.nope" in typo.output  # before anything trains
    assert not (tmp_path / "runs").exists()
