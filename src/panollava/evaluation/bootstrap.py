"""Bootstrap confidence intervals and paired bootstrap tests, resampling *images*.

All samples of an image (its queries, and in the per-row protocol its reference rows) move
together, because they are not independent. Each replicate draws the test images with replacement
and recomputes the corpus metrics with the same definitions as the point estimate
(:func:`panollava.evaluation.metrics.corpus_from_weights`). Seeded, so reruns give the same CIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from panollava.evaluation.metrics import CaptionScores, corpus_from_weights

__all__ = ["PairedResult", "bootstrap_ci", "image_weights", "paired_bootstrap"]


def image_weights(urls: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """Resampling weights ``(n_boot, N)``: how often each sample's image was drawn."""
    images, index = np.unique(np.asarray(urls, dtype=object), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(images), size=(n_boot, len(images)))  # (B, n_images)
    counts = np.zeros((n_boot, len(images)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, index]  # (B, N)


def bootstrap_ci(
    scores: CaptionScores,
    urls: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile CI per metric from ``n_boot`` image-level resamples."""
    if n_boot <= 0:
        return {}
    replicates = corpus_from_weights(scores, image_weights(urls, n_boot, seed))
    tail = 100 * (1 - level) / 2
    out = {}
    for name, values in replicates.items():
        lo, hi = np.nanpercentile(values, [tail, 100 - tail])
        out[name] = (float(lo), float(hi))
    return out


@dataclass(frozen=True)
class PairedResult:
    metric: str
    difference: float  # a - b on the full test set
    ci: tuple[float, float]  # percentile CI of the difference
    p_value: float  # two-sided: how often the resampled difference has the other sign
    n_boot: int


def paired_bootstrap(
    a: CaptionScores,
    b: CaptionScores,
    urls: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[PairedResult]:
    """Paired test of run ``a`` minus run ``b`` on the same samples (same order, same images).

    The same resampled images are used for both runs in every replicate.
    """
    weights = image_weights(urls, n_boot, seed)
    ones = np.ones((1, len(urls)))
    rep_a, rep_b = corpus_from_weights(a, weights), corpus_from_weights(b, weights)
    full_a, full_b = corpus_from_weights(a, ones), corpus_from_weights(b, ones)
    tail = 100 * (1 - level) / 2
    out = []
    for name in a.metrics:
        if name not in rep_b:
            continue
        diff = rep_a[name] - rep_b[name]
        observed = float(full_a[name][0] - full_b[name][0])
        lo, hi = np.nanpercentile(diff, [tail, 100 - tail])
        p = 2 * min(np.mean(diff <= 0), np.mean(diff >= 0))
        out.append(PairedResult(name, observed, (float(lo), float(hi)), float(min(1.0, p)), n_boot))
    return out
