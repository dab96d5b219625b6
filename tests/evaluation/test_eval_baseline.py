"""Blind baseline, grouped vs per-row protocols on the QuIC-360 test set, and METEOR at scale."""

from __future__ import annotations

import csv
import json
import random
import re
import threading
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.cider.cider_scorer import CiderScorer, precook
from typer.testing import CliRunner

from panollava.evaluation.baseline import PUBLISHED_QUIC360, cider_centrality
from panollava.evaluation.javatools import MeteorProcess, ptb_tokenize
from panollava.evaluation.metrics import meteor_from_stats, meteor_summable
from panollava.evaluation.samples import build_sample_sets
from panollava.evaluation.scoring import score_sample_sets
from panollava.evaluation.tables import (
    PredictionRow,
    PredictionTable,
    ReferenceTable,
    read_references,
)

SYSTEM_MD = Path(__file__).resolve().parents[2] / ".." / "shared" / "docs" / "SYSTEM.md"


def test_centrality_equals_pycocoevalcap_cider(shared_files):
    rows = random.Random(0).sample(read_references(shared_files["train"]).rows, 300)
    sizes = Counter(r.query for r in rows)
    rows = [r for r in rows if sizes[r.query] > 1]
    tokens = ptb_tokenize([r.reference for r in rows])
    tokens[0] = f"{tokens[1]} {tokens[1]}"  # repeated n-grams exercise the clipping
    groups = [r.query for r in rows]
    centrality, best = cider_centrality(tokens, groups)
    # golden: pycocoevalcap's CIDEr-D of each caption against the others of its query, with
    # document frequencies over all captions (each caption one document, as ours)
    scorer = CiderScorer(n=4, sigma=6.0)
    for i, g in enumerate(groups):
        scorer.cook_append(
            tokens[i], [tokens[j] for j in range(len(rows)) if groups[j] == g and j != i]
        )
    df = defaultdict(float)
    for t in tokens:
        for gram in precook(t):
            df[gram] += 1
    scorer.document_frequency = df
    gold = np.asarray(scorer.compute_cider())  # its ref_len is log(#captions), as ours
    np.testing.assert_allclose(centrality, gold, rtol=0, atol=1e-12)
    for g, i in best.items():
        members = [j for j in range(len(rows)) if groups[j] == g]
        assert i == members[int(np.argmax(gold[members]))]


def test_published_numbers_are_those_of_the_spec():
    spec = SYSTEM_MD.read_text()
    for model, values in PUBLISHED_QUIC360["cider"].items():
        line = next(ln for ln in spec.splitlines() if ln.startswith(f"| {model} CIDEr"))
        assert re.findall(r"0\.\d{4}", line) == [f"{v:.4f}" for v in values]
    for strategy, value in PUBLISHED_QUIC360["qwen25vl3b_input_strategies_cider"].items():
        assert f"{strategy} {value:.4f}" in spec


def _blind_predictions(train_rows, test_rows) -> tuple[PredictionTable, dict[str, str]]:
    """The blind baseline's predictions for ``test_rows`` from ``train_rows`` (as run_blind_baseline)."""
    raw = [r.reference for r in train_rows]
    _, best = cider_centrality(ptb_tokenize(raw), [r.query for r in train_rows])
    captions = {q: raw[i] for q, i in best.items()}
    keys = list(dict.fromkeys((r.url, r.query) for r in test_rows))
    rows = [
        PredictionRow(i, "blind", captions[q], url=u, query=q) for i, (u, q) in enumerate(keys, 1)
    ]
    return PredictionTable(Path("blind.csv"), "keyed", rows, False), captions


def _check_protocols(train_rows, test_rows) -> None:
    table, captions = _blind_predictions(train_rows, test_rows)
    refs = ReferenceTable(Path("test.tsv"), test_rows)
    cider = {}
    for protocol in ("grouped", "per_row"):
        sets = build_sample_sets(table, refs, protocol=protocol)
        cider[protocol] = score_sample_sets(sets, metrics=["CIDEr"])["blind"]
    n_pairs = len({(r.url, r.query) for r in test_rows})
    assert len(cider["grouped"].per_sample["CIDEr"]) == n_pairs
    assert len(cider["per_row"].per_sample["CIDEr"]) == len(test_rows)
    assert abs(cider["grouped"].corpus["CIDEr"] - cider["per_row"].corpus["CIDEr"]) > 0.005
    # per_row == pycocoevalcap on the raw rows: each row its own id with its one annotation
    texts = [r.reference for r in test_rows]
    preds = [captions[r.query] for r in test_rows]
    tokens = dict(zip(texts + preds, ptb_tokenize(texts + preds), strict=True))
    gts = {i: [tokens[t]] for i, t in enumerate(texts)}
    res = {i: [tokens[p]] for i, p in enumerate(preds)}
    score, per_row = Cider().compute_score(gts, res)
    assert cider["per_row"].corpus["CIDEr"] == score
    np.testing.assert_array_equal(cider["per_row"].per_sample["CIDEr"], per_row)


def test_protocols_on_a_test_subset(shared_files):
    train = read_references(shared_files["train"]).rows
    test = read_references(shared_files["test"]).rows
    images = sorted({r.url for r in test})[:60]
    queries = {r.query for r in test if r.url in images}
    _check_protocols(
        [r for r in train[:3000] if r.query in queries]
        + [r for r in train if r.query in queries][-500:],
        [r for r in test if r.url in images],
    )


@pytest.mark.slow
def test_protocols_on_the_full_test_set(shared_files):
    """Acceptance: grouped and per_row CIDEr differ on test.tsv; per_row is row-wise scoring."""
    _check_protocols(
        read_references(shared_files["train"]).rows, read_references(shared_files["test"]).rows
    )


@pytest.mark.slow
def test_meteor_on_6246_pairs_does_not_deadlock(shared_files):
    rows = read_references(shared_files["test"]).rows
    assert len(rows) == 6246
    hyps = ptb_tokenize([r.reference for r in rows])
    refs = [[hyps[(i + 7) % len(hyps)], hyps[(i + 1) % len(hyps)]] for i in range(len(hyps))]
    box: dict = {}

    def work() -> None:
        with MeteorProcess(timeout_s=240) as meteor:
            box["result"] = meteor.score(hyps, refs)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "METEOR did not finish in 300 s"
    result = box["result"]
    assert len(result.scores) == 6246 and 0 < result.score < 1
    # our statistics-based aggregate (used by the bootstrap) equals the jar's on real data
    stats = np.asarray(result.stats)
    np.testing.assert_allclose(meteor_from_stats(stats), result.scores, atol=1e-12)
    assert meteor_from_stats(meteor_summable(stats).sum(0)) == pytest.approx(
        result.score, abs=1e-12
    )


@pytest.mark.slow
def test_blind_baseline_cli_prints_published_table(shared_files, tmp_path):
    from panollava.cli import app

    out = tmp_path / "blind"
    args = ["baseline", "blind", str(shared_files["train"]), str(shared_files["test"])]
    metrics = ["--metric", "BLEU", "--metric", "ROUGE-L", "--metric", "CIDEr"]  # METEOR: above
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--bootstrap", "200", *metrics])
    assert result.exit_code == 0, result.output
    assert "| InternVL3-2B | 0.3054 |" in result.output
    assert "blind baseline, per_row (6,246 rows)" in result.output
    for protocol, n in (("grouped", 1211), ("per_row", 6246)):
        meta = json.loads((out / protocol / "metrics.json").read_text())
        run = meta["runs"]["blind"]
        assert meta["protocol"] == protocol and run["counts"]["samples"] == n
        assert all(run["metrics"][m] is not None for m in ("ROUGE-L", "CIDEr", "BLEU-4"))
        assert "METEOR" not in run["metrics"]
    with (out / "central_captions.csv").open(newline="") as fh:
        assert len(list(csv.reader(fh))) == 35  # header + the 34 training queries
