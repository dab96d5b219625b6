"""The blind baseline: answer every query with its most central training caption, no image at all.

For each query, the training caption with the highest mean CIDEr-D to the other training captions of
that query is predicted for every test image. CIDEr-D is pycocoevalcap's definition (clipped
n-gram counts, Gaussian length penalty σ = 6, ×10; its "length" is the bigram count, as there) with
document frequencies over all training captions (each caption one document, ``log N`` as
pycocoevalcap's ``ref_len``). All pairs are computed exactly — no sampling — with sparse products:
``min(a, b)·b`` for tf-idf values ``a = tf_h·w, b = tf_r·w`` equals ``w² Σ_k [tf_h ≥ k][tf_r ≥ k]·tf_r``,
so the clipped similarity of every pair is a sum of a few sparse matrix products.

A blind baseline that scores close to a trained model says the metric rewards the caption *style*
of a query more than what is in the image.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocoevalcap.cider.cider_scorer import precook

from panollava.evaluation.grounded import find_scene_graphs
from panollava.evaluation.javatools import MeteorProcess, ptb_tokenize
from panollava.evaluation.metrics import ALL_METRICS, expand_metrics
from panollava.evaluation.samples import PROTOCOLS, build_sample_sets
from panollava.evaluation.scoring import score_sample_sets, write_run_dir
from panollava.evaluation.tables import (
    PredictionRow,
    PredictionTable,
    TableError,
    read_references,
)

__all__ = [
    "PUBLISHED_QUIC360",
    "BlindBaseline",
    "central_captions",
    "cider_centrality",
    "published_table",
    "run_blind_baseline",
]

# SYSTEM.md §8: published QuIC-360 test results (per-row protocol, 5,349 rows, LoRA 1 epoch).
PUBLISHED_QUIC360 = {
    "source": "CORA (ECCV 2026) as summarised in ../shared/docs/SYSTEM.md §8: QuIC-360 test, "
    "per-row protocol, 5,349 rows (images that downloaded), LoRA 1 epoch, CIDEr",
    "protocol": "per_row",
    "columns": ("resize", "native", "+CORA DenseCL", "+CORA VICReg"),
    "cider": {
        "InternVL3-2B": (0.3054, 0.3405, 0.3603, 0.3609),
        "Qwen2.5-VL-3B": (0.2809, 0.3306, 0.3423, 0.3425),
        "Gemma3-4B": (0.3383, 0.3363, 0.3362, 0.3357),
    },
    "qwen25vl3b_input_strategies_cider": {
        "resize": 0.2809,
        "native": 0.3285,
        "cubemap": 0.3303,
        "pinhole": 0.3384,
        "anyres_e2p": 0.3389,
    },
}
CIDER_N = 4
CIDER_SIGMA = 6.0


def _group_matrices(
    counts: list[dict], weights: dict, order: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], np.ndarray]:
    """Sparse H_k, R_k ``(m, V)`` for one n-gram order, and the tf-idf norms ``(m,)``."""
    columns: dict[tuple, int] = {}
    entries: dict[int, tuple[list, list, list, list]] = defaultdict(lambda: ([], [], [], []))
    norms = np.zeros(len(counts))
    for i, cnt in enumerate(counts):
        for gram, tf in cnt.items():
            if len(gram) != order:
                continue
            w = weights[gram]
            norms[i] += (tf * w) ** 2
            col = columns.setdefault(gram, len(columns))
            for k in range(1, tf + 1):
                rows, cols, h_vals, r_vals = entries[k]
                rows.append(i)
                cols.append(col)
                h_vals.append(w)
                r_vals.append(w * tf)
    shape = (len(counts), max(1, len(columns)))
    hs, rs = [], []
    for rows, cols, h_vals, r_vals in entries.values():
        index = torch.tensor([rows, cols], dtype=torch.long)
        for vals, out in ((h_vals, hs), (r_vals, rs)):
            values = torch.tensor(vals, dtype=torch.float64)
            out.append(torch.sparse_coo_tensor(index, values, shape, check_invariants=False))
    return hs, rs, np.sqrt(norms)


def _pairwise_cider(counts: list[dict], weights: dict, lengths: np.ndarray) -> np.ndarray:
    """CIDEr-D of caption i (hypothesis) against caption j (single reference): ``(m, m)``."""
    m = len(counts)
    total = np.zeros((m, m))
    for order in range(1, CIDER_N + 1):
        hs, rs, norms = _group_matrices(counts, weights, order)
        clipped = np.zeros((m, m))
        with warnings.catch_warnings():  # torch flags its internal sparse CSR use as beta
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            for h, r in zip(hs, rs, strict=True):
                clipped += torch.sparse.mm(h, r.t()).to_dense().numpy()
        denom = np.outer(norms, norms)
        total += np.divide(clipped, denom, out=np.zeros_like(clipped), where=denom != 0)
    delta = lengths[:, None] - lengths[None, :]
    penalty = np.exp(-(delta**2) / (2 * CIDER_SIGMA**2))
    return 10.0 * total / CIDER_N * penalty


def cider_centrality(
    tokenized: Sequence[str], groups: Sequence[str]
) -> tuple[np.ndarray, dict[str, int]]:
    """Mean CIDEr-D of each caption to the other captions of its group, and the argmax per group.

    IDF over all ``tokenized`` captions (one document each). A group of one caption gets
    centrality NaN and is its own choice.
    """
    counts = [precook(t, CIDER_N) for t in tokenized]
    df: dict[tuple, int] = defaultdict(int)
    for cnt in counts:
        for gram in cnt:
            df[gram] += 1
    ref_len = math.log(len(counts))
    weights = {g: ref_len - math.log(max(1.0, d)) for g, d in df.items()}
    lengths = np.array([sum(tf for g, tf in c.items() if len(g) == 2) for c in counts], float)
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    centrality = np.full(len(counts), np.nan)
    best = {}
    for group, idx in members.items():
        if len(idx) == 1:
            best[group] = idx[0]
            continue
        scores = _pairwise_cider([counts[i] for i in idx], weights, lengths[idx])
        mean_to_others = (scores.sum(1) - np.diag(scores)) / (len(idx) - 1)
        centrality[idx] = mean_to_others
        best[group] = idx[int(np.argmax(mean_to_others))]
    return centrality, best


@dataclass(frozen=True)
class BlindBaseline:
    captions: dict[str, str]  # query -> the predicted (raw) training caption
    centrality: dict[str, float]  # query -> its mean CIDEr-D to the query's other captions
    train_counts: dict[str, int]  # query -> number of training captions


def central_captions(train: str | Path) -> BlindBaseline:
    """The blind baseline's caption per query, from a QuIC-360 training file."""
    table = read_references(train)
    raw = [r.reference for r in table.rows]
    queries = [r.query for r in table.rows]
    centrality, best = cider_centrality(ptb_tokenize(raw), queries)
    counts: dict[str, int] = defaultdict(int)
    for q in queries:
        counts[q] += 1
    return BlindBaseline(
        captions={q: raw[i] for q, i in best.items()},
        centrality={q: float(centrality[i]) for q, i in best.items()},
        train_counts=dict(counts),
    )


def _prediction_table(baseline: BlindBaseline, test: str | Path) -> PredictionTable:
    refs = read_references(test)
    unknown = sorted({r.query for r in refs.rows} - set(baseline.captions))
    if unknown:
        raise TableError(f"{test}: queries without training captions: {unknown}")
    keys = list(dict.fromkeys((r.url, r.query) for r in refs.rows))
    rows = [
        PredictionRow(i, "blind", baseline.captions[q], url=u, query=q)
        for i, (u, q) in enumerate(keys, start=1)
    ]
    return PredictionTable(Path(test), "keyed", rows, has_inline_references=False)


def run_blind_baseline(
    train: str | Path,
    test: str | Path,
    *,
    out: str | Path,
    protocols: Sequence[str] = PROTOCOLS,
    metrics: Sequence[str] = ALL_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    corenlp_dir: str | Path | None = None,
) -> dict[str, dict]:
    """Build the baseline, write ``out/predictions.csv`` and one run folder per protocol
    (``out/<protocol>/``); returns protocol -> metrics.json content."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    baseline = central_captions(train)
    table = _prediction_table(baseline, test)
    with (out / "predictions.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "query", "prediction"])
        writer.writerows([r.url, r.query, r.prediction] for r in table.rows)
    with (out / "central_captions.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "train_captions", "mean_cider_to_others", "caption"])
        for q, caption in sorted(baseline.captions.items()):
            writer.writerow([q, baseline.train_counts[q], baseline.centrality[q], caption])
    refs = read_references(test)
    scenes = find_scene_graphs(test, [r.url for r in refs.rows])  # synthetic data: grounded too
    wanted = expand_metrics(metrics)
    meteor = MeteorProcess() if "METEOR" in wanted else None
    results = {}
    try:
        for protocol in protocols:
            sets = build_sample_sets(table, refs, protocol=protocol)
            scores = score_sample_sets(sets, metrics=wanted, corenlp_dir=corenlp_dir, meteor=meteor)
            inputs = {
                "predictions": str((out / "predictions.csv").resolve()),
                "references": str(Path(test).resolve()),
                "layout": "keyed",
                "baseline": f"blind: most central training caption per query of {Path(train).resolve()}",
            }
            results[protocol] = write_run_dir(
                out / protocol,
                sets,
                scores,
                protocol=protocol,
                inputs=inputs,
                n_boot=n_boot,
                seed=seed,
                scenes=scenes,
            )
    finally:
        if meteor is not None:
            meteor.close()
    return results


def published_table(blind: dict[str, tuple[float, int]]) -> str:
    """Markdown: the published CIDEr table of SYSTEM.md §8 with the blind baseline in its own
    column. ``blind``: protocol -> (CIDEr, number of scored samples)."""
    cols = [*PUBLISHED_QUIC360["columns"], "blind (no image)"]
    lines = ["| model (CIDEr) | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for model, values in PUBLISHED_QUIC360["cider"].items():
        lines.append(f"| {model} | " + " | ".join(f"{v:.4f}" for v in values) + " | – |")
    for protocol, (value, n) in blind.items():
        unit = "rows" if protocol == "per_row" else "(image, query) pairs"
        lines.append(
            f"| blind baseline, {protocol} ({n:,} {unit}) | "
            + " | ".join(["–"] * (len(cols) - 1))
            + f" | {value:.4f} |"
        )
    lines += ["", f"Published numbers: {PUBLISHED_QUIC360['source']}."]
    return "\n".join(lines)
