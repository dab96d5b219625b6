"""Overlap-consistency losses between adjacent tiles, on geometric patch correspondences.

Inputs everywhere: tile features ``(B, T, N, D)`` (global view already excluded) and, per sample,
a tuple of ``PatchPairs`` whose ``i``/``j`` index that sample's tiles and whose ``idx_i``/``idx_j``
index the ``N`` patch tokens. All statistics are computed in fp32.

* **VICReg-pairwise** (per adjacent pair, then averaged over pairs; pairs with the same number
  of matches are computed as one batch):
  ``inv·MSE(z_i, z_j) + var·(v(z_i) + v(z_j))/2 + cov·(c(z_i) + c(z_j))`` on the matched tokens,
  with ``v(z) = mean(relu(1 - sqrt(Var(z) + 1e-4)))`` per feature and
  ``c(z) = sum(offdiag(Cov(z))²) / D`` (VICReg, Bardes et al. 2022).
* **VICReg-batchwise**: the same three terms with statistics pooled over all pairs of the batch.
* **DenseCL**: symmetric patch-level InfoNCE: L2-normalised features, logits ``q·kᵀ/τ`` over the
  matched tokens of a pair; the positive of token ``a`` of tile i is its match in tile j, the other
  matched tokens of j are negatives; the mean of both directions (plus retrieval accuracy).
* **Dense VICReg** (ours): invariance on matched pairs as above, but variance and covariance over
  *all* ``N`` tokens of every tile, so the whole feature map is kept from collapsing, not only the
  overlapping strip.

Pairs with fewer than ``min_pairs`` matches are skipped and counted (``parts["skipped"]``). With
no usable pair the loss is a zero still connected to the features (DDP needs every rank's graph).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from panollava.losses.schema import OverlapLossConfig

__all__ = [
    "OverlapLoss",
    "ProjectionHead",
    "build_overlap_loss",
    "covariance_term",
    "densecl_pair",
    "matched_tokens",
    "variance_term",
]

Parts = dict[str, torch.Tensor]


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``mean(relu(1 - std))`` over features of tokens ``(..., K, D)`` (std of each feature over
    K) -> ``(...)``."""
    std = torch.sqrt(z.var(dim=-2) + eps)
    return F.relu(1.0 - std).mean(-1)


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariance entries / D for tokens ``(..., K, D)`` -> ``(...)``."""
    k, d = z.shape[-2:]
    zc = z - z.mean(dim=-2, keepdim=True)
    # ||Cov||_F² from the smaller of the (D, D) covariance and the (K, K) Gram matrix (the same
    # value: the non-zero spectra agree), minus the squared diagonal (the variances).
    gram = zc @ zc.mT if k < d else zc.mT @ zc
    diagonal = zc.pow(2).sum(-2).pow(2).sum(-1)  # sum_d (sum_k zc²)²
    return (gram.pow(2).sum((-2, -1)) - diagonal) / (max(k - 1, 1) ** 2 * d)


def matched_tokens(
    features: torch.Tensor, pairs: Sequence[Sequence], min_pairs: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """Matched tokens of every usable (sample, pair) in fp32, in blocks of equal match count
    ``K``: ``[(z_i (P, K, D), z_j (P, K, D)), ...]``, and the number of skipped (sample, pair)s.

    Samples that share one pair list (the same object, as the models pass it) are gathered
    together: one indexing per block instead of one per pair."""
    shared: dict[int, list[int]] = defaultdict(list)
    for b, sample_pairs in enumerate(pairs):
        shared[id(sample_pairs)].append(b)
    out, skipped, dev = [], 0, features.device
    for samples in shared.values():
        blocks: dict[int, list] = defaultdict(list)
        for p in pairs[samples[0]]:
            if len(p) < min_pairs:
                skipped += len(samples)
            else:
                blocks[len(p)].append(p)
        sub = features[torch.tensor(samples, device=dev)]  # (S, T, N, D)
        for block in blocks.values():
            ti = torch.tensor([p.i for p in block], device=dev)[:, None]  # (P, 1)
            tj = torch.tensor([p.j for p in block], device=dev)[:, None]
            ii = torch.stack([p.idx_i for p in block]).to(dev)  # (P, K)
            jj = torch.stack([p.idx_j for p in block]).to(dev)
            za, zb = sub[:, ti, ii], sub[:, tj, jj]  # (S, P, K, D)
            out.append((za.flatten(0, 1).float(), zb.flatten(0, 1).float()))
    return out, skipped


def _vicreg(za: torch.Tensor, zb: torch.Tensor, w: OverlapLossConfig) -> Parts:
    """VICReg terms of matched tokens ``(..., K, D)`` of two tiles -> parts ``(...)``."""
    inv = (za - zb).pow(2).mean((-2, -1))
    var = 0.5 * (variance_term(za) + variance_term(zb))
    cov = covariance_term(za) + covariance_term(zb)
    total = w.inv_weight * inv + w.var_weight * var + w.cov_weight * cov
    return {"total": total, "invariance": inv, "variance": var, "covariance": cov}


def densecl_pair(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> Parts:
    """Symmetric InfoNCE over matched tokens ``(..., K, D)`` of two tiles (positives on the
    diagonal) -> parts ``(...)``."""
    q, k = F.normalize(za, dim=-1), F.normalize(zb, dim=-1)
    logits = q @ k.mT / temperature  # (..., K, K)
    n = logits.shape[-1]
    target = torch.arange(n, device=q.device).expand(logits.shape[:-1])  # (..., K)

    def nce(lg: torch.Tensor) -> torch.Tensor:  # mean over K of the rows' cross-entropy
        return (
            F.cross_entropy(lg.reshape(-1, n), target.reshape(-1), reduction="none")
            .view(target.shape)
            .mean(-1)
        )

    loss = 0.5 * (nce(logits) + nce(logits.mT))
    hits = (logits.argmax(-1) == target).float().mean(-1) + (
        logits.argmax(-2) == target
    ).float().mean(-1)
    return {"total": loss, "infonce": loss, "accuracy": 0.5 * hits}


def _pairwise_mean(
    matched: list[tuple[torch.Tensor, torch.Tensor]],
    fn: Callable[[torch.Tensor, torch.Tensor], Parts],
) -> Parts:
    """The mean over pairs of ``fn``'s parts; the blocks of :func:`matched_tokens` with the same
    number of matches go into one ``(P, K, D)`` call."""
    groups: dict[int, list[int]] = defaultdict(list)
    for n, (a, _) in enumerate(matched):
        groups[a.shape[-2]].append(n)
    per = []
    for members in groups.values():
        za = torch.cat([matched[n][0] for n in members])  # (P, K, D)
        zb = torch.cat([matched[n][1] for n in members])
        per.append(fn(za, zb))  # parts (P,)
    return {k: torch.cat([p[k] for p in per]).mean() for k in per[0]}


class ProjectionHead(nn.Module):
    """Linear-LN-GELU-Linear applied to every token ``(..., D) -> (..., H)``."""

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or dim
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OverlapLoss(nn.Module):
    """``(features (B, T, N, D), pairs) -> (total, parts)``; see the module docstring."""

    def __init__(self, cfg: OverlapLossConfig, in_dim: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.head = None
        if cfg.head:
            if in_dim is None:
                raise ValueError("overlap_loss.head needs the feature width (in_dim)")
            self.head = ProjectionHead(in_dim, cfg.head_dim)

    def forward(
        self, features: torch.Tensor, pairs: Sequence[Sequence]
    ) -> tuple[torch.Tensor, Parts]:
        features = features.float()  # all statistics in fp32 (bf16/fp16 inputs included)
        if self.head is not None:
            features = self.head(features)
        cfg = self.cfg
        matched, skipped = matched_tokens(features, pairs, cfg.min_pairs)
        counts = {
            "pairs": torch.tensor(float(sum(len(a) for a, _ in matched))),
            "skipped": torch.tensor(float(skipped)),
        }
        if not matched:
            return features.float().sum() * 0.0, counts
        if cfg.type == "vicreg_pairwise":
            parts = _pairwise_mean(matched, lambda a, b: _vicreg(a, b, cfg))
        elif cfg.type == "vicreg_batchwise":
            za = torch.cat([a.flatten(0, 1) for a, _ in matched])  # (sum of K, D)
            zb = torch.cat([b.flatten(0, 1) for _, b in matched])
            parts = _vicreg(za, zb, cfg)
        elif cfg.type == "densecl":
            parts = _pairwise_mean(matched, lambda a, b: densecl_pair(a, b, cfg.temperature))
        else:  # dense_vicreg: statistics over every token of every tile
            tiles = features.float().flatten(0, 1)  # (B*T, N, D)
            za = torch.cat([a.flatten(0, 1) for a, _ in matched])
            zb = torch.cat([b.flatten(0, 1) for _, b in matched])
            var = variance_term(tiles).mean()
            cov = covariance_term(tiles).mean()
            inv = F.mse_loss(za, zb)
            total = cfg.inv_weight * inv + cfg.var_weight * var + cfg.cov_weight * cov
            parts = {"total": total, "invariance": inv, "variance": var, "covariance": cov}
        total = parts.pop("total")
        return total, {**{k: v.detach() for k, v in parts.items()}, **counts}


def build_overlap_loss(cfg: OverlapLossConfig, in_dim: int | None = None) -> OverlapLoss:
    """The configured overlap loss (with its projection head when ``cfg.head``)."""
    return OverlapLoss(cfg, in_dim)
