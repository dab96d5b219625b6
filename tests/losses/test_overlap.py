"""Overlap losses: hand-computed values, hinge behaviour, fp32/bf16 gradients, reference InfoNCE."""

import math

import pytest
import torch

from panollava.losses import (
    OverlapLossConfig,
    build_overlap_loss,
    covariance_term,
    densecl_pair,
    variance_term,
)
from panollava.views import make_layout, patch_correspondences
from panollava.views.correspondence import PatchPairs
from panollava.views.schema import ViewsConfig


def _pair(i, j, idx_i, idx_j):
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return PatchPairs(i, j, t(idx_i), t(idx_j), torch.zeros(len(idx_i)))


def test_variance_hinge_at_std_zero_and_above_one():
    assert variance_term(torch.ones(10, 3)) == pytest.approx(1 - math.sqrt(1e-4))
    wide = torch.tensor([[-2.0, 4.0], [2.0, -4.0]] * 5)  # std >= 1 on both features
    assert variance_term(wide) == 0.0


def test_covariance_hand_computed():
    z = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])  # y = 2x: cov = [[4, 8], [8, 16]]
    assert covariance_term(z) == pytest.approx((8.0**2 * 2) / 2)


def test_vicreg_pairwise_hand_computed_and_invariance_zero():
    feats = torch.zeros(1, 2, 4, 2)
    feats[0, 0] = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    feats[0, 1] = feats[0, 0] + torch.tensor([1.0, 0.0])  # shifted copy
    pairs = [(_pair(0, 1, [0, 1, 2, 3], [0, 1, 2, 3]),)]
    loss, parts = build_overlap_loss(OverlapLossConfig())(feats, pairs)
    # invariance: mean squared diff = (1 + 0) / 2 = 0.5 per element
    assert parts["invariance"] == pytest.approx(0.5)
    std = math.sqrt(4 / 3 + 1e-4)  # each feature takes 0,2,0,2 (unbiased var 4/3)
    assert parts["variance"] == pytest.approx(max(0.0, 1 - std))
    assert parts["covariance"] == pytest.approx(0.0, abs=1e-6)  # the two features are uncorrelated
    assert loss == pytest.approx(25 * 0.5 + 25 * max(0.0, 1 - std))
    same = feats.clone()
    same[0, 1] = same[0, 0]
    _, parts = build_overlap_loss(OverlapLossConfig())(same, pairs)
    assert parts["invariance"] == 0.0


def test_densecl_equals_reference_infonce():
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    ours = densecl_pair(za, zb, 0.07)["total"]
    # reference: explicit log-softmax sums, both directions
    qa, qb = za / za.norm(dim=1, keepdim=True), zb / zb.norm(dim=1, keepdim=True)
    sim = (qa @ qb.T) / 0.07
    a_to_b = -(sim.diag() - torch.logsumexp(sim, dim=1)).mean()
    b_to_a = -(sim.diag() - torch.logsumexp(sim, dim=0)).mean()
    assert ours == pytest.approx(float((a_to_b + b_to_a) / 2), rel=1e-5)


@pytest.mark.parametrize("kind", ["vicreg_pairwise", "vicreg_batchwise", "densecl", "dense_vicreg"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_real_layout_gradients_finite(kind, dtype):
    layout = make_layout(ViewsConfig(tile_size=64))
    pairs = patch_correspondences(layout, (4, 4))
    tile_pos = {v.index: k for k, v in enumerate(layout.tiles)}
    pairs = tuple(p.reindexed(tile_pos[p.i], tile_pos[p.j]) for p in pairs)
    feats = torch.randn(2, 8, 16, 12).to(dtype).requires_grad_(True)
    loss_fn = build_overlap_loss(OverlapLossConfig(type=kind, min_pairs=2, head=True), in_dim=12)
    loss, parts = loss_fn(feats, [pairs, pairs])
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    assert parts["pairs"] == 16 and parts["skipped"] == 0
    if kind == "densecl":
        assert 0 <= parts["accuracy"] <= 1


def test_small_pairs_skipped_and_counted_and_zero_loss_stays_connected():
    feats = torch.randn(1, 2, 4, 3, requires_grad=True)
    pairs = [(_pair(0, 1, [0], [1]),)]
    loss, parts = build_overlap_loss(OverlapLossConfig(min_pairs=4))(feats, pairs)
    assert parts["skipped"] == 1 and parts["pairs"] == 0 and loss == 0
    loss.backward()  # connected to the graph (DDP needs it)
    assert feats.grad is not None


def test_samples_with_different_tile_counts():
    feats = torch.randn(2, 3, 4, 5)
    pairs = [
        (_pair(0, 1, [0, 1, 2, 3], [3, 2, 1, 0]), _pair(1, 2, [0, 1, 2, 3], [0, 1, 2, 3])),
        (_pair(0, 1, [0, 1, 2, 3], [0, 1, 2, 3]),),
    ]  # sample 2 has only 2 real tiles
    _, parts = build_overlap_loss(OverlapLossConfig(type="densecl"))(feats, pairs)
    assert parts["pairs"] == 3
