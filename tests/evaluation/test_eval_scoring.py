"""`panollava score / compare / report` on the shared QuIC-360 samples (4 methods × 6 samples)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from typer.testing import CliRunner

from panollava.cli import app
from panollava.evaluation.bootstrap import bootstrap_ci, paired_bootstrap
from panollava.evaluation.compare import compare_markdown
from panollava.evaluation.metrics import tokenize_samples
from panollava.evaluation.report import write_report
from panollava.evaluation.scoring import load_run_dir

METHODS = ["Resize", "Native", "DenseCL", "VICReg-pw"]
SCORED = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]


def test_cli_scores_every_method_and_marks_spice_unavailable(shared_run_dir):
    meta = json.loads((shared_run_dir / "metrics.json").read_text())
    assert meta["protocol"] == "grouped" and "all its references" in meta["protocol_note"]
    assert {"pycocoevalcap", "java", "panollava"} <= set(meta["versions"])
    assert list(meta["runs"]) == METHODS
    for run in meta["runs"].values():
        assert run["counts"]["samples"] == 6 and run["counts"]["missing"] == 0
        for name in SCORED:
            value = run["metrics"][name]
            lo, hi = run["ci95"][name]
            assert value is not None and 0.0 <= lo <= hi, name
        assert run["metrics"]["SPICE"] is None
        assert "CoreNLP 3.6.0" in run["unavailable"]["SPICE"]
        assert "--corenlp-dir" in run["unavailable"]["SPICE"]
    with (shared_run_dir / "per_sample.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and "SPICE" not in rows[0]


def test_cli_scores_equal_pycocoevalcap(shared_run_dir, pycoco_meteor):
    meta, runs = load_run_dir(shared_run_dir)
    for name, run in runs.items():
        hyps, refs = tokenize_samples(run.samples.predictions, run.samples.references)
        gts = {i: r for i, r in enumerate(refs)}
        res = {i: [h] for i, h in enumerate(hyps)}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        gold = {f"BLEU-{k + 1}": bleu[k] for k in range(4)}
        gold["METEOR"], meteor_each = pycoco_meteor.compute_score(gts, res)
        gold["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
        gold["CIDEr"], cider_each = Cider().compute_score(gts, res)
        for metric, value in gold.items():
            assert meta["runs"][name]["metrics"][metric] == pytest.approx(value, abs=1e-12)
        np.testing.assert_allclose(run.scores.per_sample["CIDEr"], cider_each, atol=1e-12)
        np.testing.assert_allclose(run.scores.per_sample["METEOR"], meteor_each, atol=1e-12)


def test_bootstrap_is_seeded_and_paired_test_of_a_run_with_itself(shared_run_dir):
    _, runs = load_run_dir(shared_run_dir)
    run = runs["Native"]
    ci_a = bootstrap_ci(run.scores, run.samples.urls, n_boot=300, seed=3)
    ci_b = bootstrap_ci(run.scores, run.samples.urls, n_boot=300, seed=3)
    assert ci_a == ci_b and set(ci_a) == set(SCORED)
    same = paired_bootstrap(run.scores, run.scores, run.samples.urls, n_boot=200)
    assert all(r.difference == 0 and r.ci == (0.0, 0.0) and r.p_value == 1.0 for r in same)


def test_compare_table_and_paired_test(shared_run_dir, tmp_path):
    text = compare_markdown([shared_run_dir], n_boot=200)
    table = text.split("\n\n")[0].splitlines()
    assert table[0].startswith("| run | protocol | samples | BLEU-1")
    assert len([ln for ln in table if ln.startswith("| ") and "grouped" in ln]) == 4
    native = next(ln for ln in table if ln.startswith("| Native"))
    assert "**" in native  # Native has the best CIDEr on these samples
    assert "Native** − **Resize" in text and "p (two-sided)" in text
    result = CliRunner().invoke(app, ["compare", str(shared_run_dir), "--bootstrap", "100"])
    assert result.exit_code == 0 and "| Resize | grouped | 6 |" in result.output


def test_report_writes_markdown_html_and_gallery(shared_run_dir):
    md, html = write_report(shared_run_dir, examples=4)
    text = md.read_text()
    assert "## Per query (6 queries)" in text and "## Examples (4 of 6" in text
    assert text.count("![ERP") == 4  # the panoramas exist next to samples.csv
    assert (shared_run_dir / "report_assets" / "metrics.png").stat().st_size > 0
    assert "<table>" in html.read_text() and "SPICE n/a" in text


def test_bad_predictions_give_a_clear_error(tmp_path, shared_files):
    preds = tmp_path / "p.csv"
    preds.write_text("url,query,prediction\nimg_01.jpg,small objects,x\nimg_99.jpg,cars,y\n")
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(preds),
            "--references",
            str(shared_files["samples"]),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "img_99.jpg | cars" in result.output and "p.csv" in result.output
    assert not (tmp_path / "o").exists()
