"""Value tests of the overlap losses on a hand-made example; the numbers come from
``golden_overlap.py`` beside this file (an independent NumPy transcription of the formulas).
Invariance by hand: pair (0,1) differs by (0,-.5),(0,-1) -> MSE .3125; pair (1,2) by (-.5,2),(2,1)
-> 2.3125; pooled over 8 entries -> 1.3125."""

from __future__ import annotations

import golden_overlap as golden
import pytest
import torch

from panollava.losses.overlap import build_overlap_loss
from panollava.losses.schema import OverlapLossConfig
from panollava.views.correspondence import PatchPairs

PINNED = {  # printed by `python tests/losses/golden_overlap.py`
    "vicreg_pairwise": {"total": 42.492485, "invariance": 1.3125, "variance": 0.350949,
                        "covariance": 0.90625},
    "vicreg_batchwise": {"total": 37.948674, "invariance": 1.3125, "variance": 0.200152,
                         "covariance": 0.132378},
    "dense_vicreg": {"total": 40.213101, "invariance": 1.3125, "variance": 0.290006,
                     "covariance": 0.150463},
}  # fmt: skip


def _inputs() -> tuple[torch.Tensor, list[list[PatchPairs]]]:
    features = torch.tensor(golden.TILES, dtype=torch.float32)[None]  # (1, 3, 3, 2)
    pairs = [
        PatchPairs(i, j, torch.tensor(ii), torch.tensor(jj), torch.zeros(len(ii)))
        for i, j, ii, jj in golden.PAIRS
    ]
    return features, [pairs]


@pytest.mark.parametrize("kind", sorted(PINNED))
def test_overlap_loss_matches_hand_computed_values(kind: str) -> None:
    assert {k: round(v, 6) for k, v in getattr(golden, kind)().items()} == PINNED[kind]
    loss = build_overlap_loss(OverlapLossConfig(type=kind, min_pairs=1))
    features, pairs = _inputs()
    total, parts = loss(features, pairs)
    assert total.item() == pytest.approx(PINNED[kind]["total"], abs=1e-5)
    for name in ("invariance", "variance", "covariance"):
        assert parts[name].item() == pytest.approx(PINNED[kind][name], abs=1e-5), name
    assert parts["pairs"].item() == 2 and parts["skipped"].item() == 0
