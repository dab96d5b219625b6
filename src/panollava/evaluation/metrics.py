"""Caption metrics through pycocoevalcap: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D and SPICE.

Inputs are one hypothesis and a list of references per *sample*; the protocol (grouped or per-row,
see :mod:`panollava.evaluation.samples`) decides what a sample is. Texts are tokenized with the PTB
tokenizer exactly as ``pycocoevalcap.eval.COCOEvalCap`` does, then scored with pycocoevalcap's own
scorers (BLEU with ``option="closest"``, ROUGE-L, ``Cider`` — which is CIDEr-D: clipped n-gram
counts, Gaussian length penalty σ = 6, ×10) and our deadlock-free driver of its METEOR jar.

Corpus scores follow pycocoevalcap: BLEU and METEOR from summed sufficient statistics, ROUGE-L,
CIDEr-D and SPICE as means of the per-sample scores. The sufficient statistics are kept so that
bootstrap resamples (:mod:`panollava.evaluation.bootstrap`) recompute the same corpus definitions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from panollava.evaluation.javatools import (
    MeteorProcess,
    ptb_tokenize,
    run_spice,
    spice_status,
)

log = logging.getLogger(__name__)

__all__ = [
    "ALL_METRICS",
    "BLEU_METRICS",
    "METRIC_FAMILIES",
    "CaptionScores",
    "bleu_from_stats",
    "corpus_from_weights",
    "expand_metrics",
    "meteor_from_stats",
    "meteor_summable",
    "score_captions",
    "score_tokenized",
]

BLEU_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")
ALL_METRICS = (*BLEU_METRICS, "METEOR", "ROUGE-L", "CIDEr", "SPICE")
# what a user can ask for -> the metrics it produces
METRIC_FAMILIES = {
    "BLEU": BLEU_METRICS,
    "METEOR": ("METEOR",),
    "ROUGE-L": ("ROUGE-L",),
    "CIDEr": ("CIDEr",),
    "SPICE": ("SPICE",),
}
BLEU_STAT_COLUMNS = (
    "testlen",
    "reflen",
    *(f"guess_{k}" for k in range(1, 5)),
    *(f"correct_{k}" for k in range(1, 5)),
)
METEOR_N_STATS = 23
# METEOR 1.5 parameters of `-l en` (task "default"): alpha, beta, gamma, delta; module weights
# for exact, stem, synonym, paraphrase matches.
METEOR_EN = {"alpha": 0.85, "beta": 0.20, "gamma": 0.60, "delta": 0.75}
METEOR_EN_WEIGHTS = (1.0, 0.6, 0.8, 0.6)


@dataclass
class CaptionScores:
    """Scores of one set of samples."""

    corpus: dict[str, float]  # metric -> corpus score (pycocoevalcap's definition)
    per_sample: dict[str, np.ndarray]  # metric -> (N,)
    bleu_stats: np.ndarray | None = None  # (N, 10): BLEU_STAT_COLUMNS
    meteor_stats: np.ndarray | None = None  # (N, 23): the METEOR jar's statistics
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> reason and fix

    @property
    def metrics(self) -> list[str]:
        """Metrics with scores, in the canonical order."""
        return [m for m in ALL_METRICS if m in self.corpus]


def expand_metrics(metrics: Sequence[str]) -> list[str]:
    """Metric names (families such as BLEU expanded) in canonical order; unknown names raise."""
    out: list[str] = []
    for name in metrics:
        if name in METRIC_FAMILIES:
            out += METRIC_FAMILIES[name]
        elif name in ALL_METRICS:
            out.append(name)
        else:
            valid = sorted({*METRIC_FAMILIES, *ALL_METRICS})
            raise ValueError(f"unknown metric {name!r}; valid: {valid}")
    return [m for m in ALL_METRICS if m in out]


def bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 from summed statistics ``(..., 10)`` -> ``(..., 4)``.

    Same arithmetic as ``BleuScorer.compute_score`` (its ``tiny``/``small`` guards included).
    """
    stats = np.asarray(stats, dtype=np.float64)
    testlen, reflen = stats[..., 0], stats[..., 1]
    guess, correct = stats[..., 2:6], stats[..., 6:10]
    tiny, small = 1e-15, 1e-9
    ratios = (correct + tiny) / (guess + small)
    cumulative = np.cumprod(ratios, axis=-1)
    bleus = cumulative ** (1.0 / np.arange(1, 5))
    ratio = (testlen + tiny) / (reflen + small)
    with np.errstate(over="ignore", divide="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleus * brevity[..., None]


def meteor_from_stats(stats: np.ndarray) -> np.ndarray:
    """METEOR 1.5 score from (summed) statistics ``(..., 23)`` -> ``(...)``.

    Reimplements the jar's ``MeteorScorer.computeMetrics`` (IEEE division semantics, NaN -> 0,
    clipped at 0); tests check it against the jar on real data.
    """
    s = np.asarray(stats, dtype=np.float64)
    alpha, beta, gamma, delta = (METEOR_EN[k] for k in ("alpha", "beta", "gamma", "delta"))
    w = np.asarray(METEOR_EN_WEIGHTS)
    test_len, ref_len, test_func, ref_func = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
    stages = s[..., 4:20].reshape(*s.shape[:-1], 4, 4)  # (..., stage, [tc, rc, tf, rf])
    chunks, test_words, ref_words = s[..., 20], s[..., 21], s[..., 22]
    with np.errstate(divide="ignore", invalid="ignore"):
        test_wlen = delta * (test_len - test_func) + (1 - delta) * test_func
        ref_wlen = delta * (ref_len - ref_func) + (1 - delta) * ref_func
        test_wmatch = (w * (delta * stages[..., 0] + (1 - delta) * stages[..., 2])).sum(-1)
        ref_wmatch = (w * (delta * stages[..., 1] + (1 - delta) * stages[..., 3])).sum(-1)
        precision = test_wmatch / test_wlen
        recall = ref_wmatch / ref_wlen
        fmean = 1.0 / ((1 - alpha) / precision + alpha / recall)
        test_total = stages[..., 0].sum(-1) + stages[..., 2].sum(-1)
        ref_total = stages[..., 1].sum(-1) + stages[..., 3].sum(-1)
        identical = (test_total == test_len) & (ref_total == ref_len) & (chunks == 1)
        frag = np.where(identical, 0.0, chunks / ((test_words + ref_words) / 2))
        score = fmean * (1 - gamma * frag**beta)
    return np.maximum(np.nan_to_num(score, nan=0.0), 0.0)


def meteor_summable(stats: np.ndarray) -> np.ndarray:
    """Per-sample METEOR statistics ready to be summed into corpus statistics ``(N, 23)``.

    Like the jar's ``MeteorStats.addStats``: the chunk count of a perfectly matching segment
    (all words matched, one chunk) is not added to the aggregate.
    """
    s = np.array(stats, dtype=np.float64)
    stages = s[:, 4:20].reshape(-1, 4, 4)
    test_total = stages[:, :, 0].sum(1) + stages[:, :, 2].sum(1)
    ref_total = stages[:, :, 1].sum(1) + stages[:, :, 3].sum(1)
    perfect = (test_total == s[:, 0]) & (ref_total == s[:, 1]) & (s[:, 20] == 1.0)
    s[perfect, 20] = 0.0
    return s


def _bleu(
    hyps: list[str], refs: list[list[str]]
) -> tuple[list[float], list[list[float]], np.ndarray]:
    scorer = BleuScorer(n=4)
    for h, r in zip(hyps, refs, strict=True):
        scorer += (h, r)
    corpus, per_sample = scorer.compute_score(option="closest", verbose=0)
    stats = np.zeros((len(hyps), 10))
    for i, comps in enumerate(scorer.ctest):
        lens = comps["reflen"]
        closest = min((abs(length - comps["testlen"]), length) for length in lens)[1]
        stats[i] = [comps["testlen"], closest, *comps["guess"], *comps["correct"]]
    return corpus, per_sample, stats


def score_tokenized(
    hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    metrics: Sequence[str] = ALL_METRICS,
    meteor: MeteorProcess | None = None,
    corenlp_dir: str | Path | None = None,
) -> CaptionScores:
    """Score already tokenized hypotheses (one per sample) against their references.

    ``meteor``: a running :class:`MeteorProcess` to reuse (one is started when needed otherwise).
    SPICE runs only if its CoreNLP jars are present; else it is listed in ``unavailable``.
    """
    hyps, refs = list(hyps), [list(r) for r in refs]
    if not hyps or len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses for {len(refs)} reference lists")
    if any(not r for r in refs):
        raise ValueError("every sample needs at least one reference")
    wanted = expand_metrics(metrics)
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    out = CaptionScores(corpus={}, per_sample={})
    if any(m in wanted for m in BLEU_METRICS):
        log.info("scoring %d samples: BLEU", len(hyps))
        corpus, per_sample, out.bleu_stats = _bleu(hyps, refs)
        for k, name in enumerate(BLEU_METRICS):
            out.corpus[name] = float(corpus[k])
            out.per_sample[name] = np.asarray(per_sample[k], dtype=np.float64)
    if "METEOR" in wanted:
        log.info("scoring %d samples: METEOR (Java)", len(hyps))
        own = meteor is None
        proc = MeteorProcess() if own else meteor
        try:
            result = proc.score(hyps, refs)
        finally:
            if own:
                proc.close()
        out.corpus["METEOR"] = result.score
        out.per_sample["METEOR"] = np.asarray(result.scores)
        out.meteor_stats = np.asarray(result.stats, dtype=np.float64)
    if "ROUGE-L" in wanted:
        log.info("scoring %d samples: ROUGE-L", len(hyps))
        score, per_sample = Rouge().compute_score(gts, res)
        out.corpus["ROUGE-L"] = float(score)
        out.per_sample["ROUGE-L"] = np.asarray(per_sample, dtype=np.float64)
    if "CIDEr" in wanted:
        log.info("scoring %d samples: CIDEr-D", len(hyps))
        score, per_sample = Cider().compute_score(gts, res)
        out.corpus["CIDEr"] = float(score)
        out.per_sample["CIDEr"] = np.asarray(per_sample, dtype=np.float64)
    if "SPICE" in wanted:
        status = spice_status(corenlp_dir)
        if status.available:
            log.info("scoring %d samples: SPICE (Java, CoreNLP)", len(hyps))
            assert status.corenlp_dir is not None
            score, per_sample = run_spice(hyps, refs, status.corenlp_dir)
            out.corpus["SPICE"] = score
            out.per_sample["SPICE"] = np.asarray(per_sample)
        else:
            out.unavailable["SPICE"] = status.reason
    return out


def score_captions(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    metrics: Sequence[str] = ALL_METRICS,
    meteor: MeteorProcess | None = None,
    corenlp_dir: str | Path | None = None,
) -> CaptionScores:
    """Tokenize raw captions (PTB, as COCOEvalCap) and score them; see :func:`score_tokenized`."""
    hyps, refs = tokenize_samples(predictions, references)
    return score_tokenized(hyps, refs, metrics=metrics, meteor=meteor, corenlp_dir=corenlp_dir)


def tokenize_samples(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    """PTB-tokenize predictions and references in one JVM call (unique texts once)."""
    unique = list(dict.fromkeys([*predictions, *(r for refs in references for r in refs)]))
    log.info("PTB-tokenizing %d unique texts (Java)", len(unique))
    tokens = dict(zip(unique, ptb_tokenize(unique), strict=True))
    return [tokens[p] for p in predictions], [[tokens[r] for r in refs] for refs in references]


def corpus_from_weights(scores: CaptionScores, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Corpus scores for weighted samples ``weights (B, N)`` (bootstrap counts) -> metric: (B,)."""
    weights = np.asarray(weights, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name in scores.metrics:
        if name in BLEU_METRICS:
            continue
        if name == "METEOR" and scores.meteor_stats is not None:
            out[name] = meteor_from_stats(weights @ meteor_summable(scores.meteor_stats))
        else:
            out[name] = (weights @ scores.per_sample[name]) / weights.sum(axis=1)
    if scores.bleu_stats is not None and BLEU_METRICS[0] in scores.corpus:
        bleus = bleu_from_stats(weights @ scores.bleu_stats)
        for k, name in enumerate(BLEU_METRICS):
            out[name] = bleus[..., k]
    return {m: out[m] for m in scores.metrics}
