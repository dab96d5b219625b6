"""Generator of the golden values pinned in ``test_overlap_values.py``.

An independent NumPy transcription of the formulas in ``panollava.losses.overlap``'s docstring
(VICReg: Bardes et al. 2022), applied to a hand-made 3-tile example. Run it to print the values:

    python tests/losses/golden_overlap.py
"""

from __future__ import annotations

import numpy as np

# features of one sample: 3 tiles x 3 tokens x 2 channels
TILES = np.array(
    [
        [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
        [[1.0, 0.5], [0.0, 2.0], [2.0, 1.0]],
        [[0.5, 0.0], [1.5, 1.0], [0.0, 0.0]],
    ]
)
# adjacent pairs (tile i, tile j, tokens of i, matching tokens of j)
PAIRS = [(0, 1, [0, 1], [0, 1]), (1, 2, [1, 2], [0, 2])]
INV, VAR, COV = 25.0, 25.0, 1.0


def variance(z: np.ndarray, eps: float = 1e-4) -> float:
    std = np.sqrt(z.var(axis=0, ddof=1) + eps)
    return float(np.maximum(0.0, 1.0 - std).mean())


def covariance(z: np.ndarray) -> float:
    k, d = z.shape
    zc = z - z.mean(axis=0)
    cov = zc.T @ zc / max(k - 1, 1)
    off = cov - np.diag(np.diag(cov))
    return float((off**2).sum() / d)


def vicreg(za: np.ndarray, zb: np.ndarray) -> dict[str, float]:
    inv = float(((za - zb) ** 2).mean())
    var = 0.5 * (variance(za) + variance(zb))
    cov = covariance(za) + covariance(zb)
    return {
        "total": INV * inv + VAR * var + COV * cov,
        "invariance": inv,
        "variance": var,
        "covariance": cov,
    }


def matched() -> list[tuple[np.ndarray, np.ndarray]]:
    return [(TILES[i][ii], TILES[j][jj]) for i, j, ii, jj in PAIRS]


def vicreg_batchwise() -> dict[str, float]:
    za = np.concatenate([a for a, _ in matched()])
    zb = np.concatenate([b for _, b in matched()])
    return vicreg(za, zb)


def dense_vicreg() -> dict[str, float]:
    za = np.concatenate([a for a, _ in matched()])
    zb = np.concatenate([b for _, b in matched()])
    inv = float(((za - zb) ** 2).mean())
    var = float(np.mean([variance(t) for t in TILES]))
    cov = float(np.mean([covariance(t) for t in TILES]))
    return {
        "total": INV * inv + VAR * var + COV * cov,
        "invariance": inv,
        "variance": var,
        "covariance": cov,
    }


def vicreg_pairwise() -> dict[str, float]:
    parts = [vicreg(a, b) for a, b in matched()]
    return {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}


if __name__ == "__main__":
    for name in ("vicreg_pairwise", "vicreg_batchwise", "dense_vicreg"):
        print(name, {k: round(v, 6) for k, v in globals()[name]().items()})
