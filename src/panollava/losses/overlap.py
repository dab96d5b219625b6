"""Overlap-consistency losses between adjacent tiles, on geometric patch correspondences.

Inputs everywhere: tile features ``(B, T, N, D)`` (global view already excluded) and, per sample,
a tuple of ``PatchPairs`` whose ``i``/``j`` index that sample's tiles and whose ``idx_i``/``idx_j``
index the ``N`` patch tokens. All statistics are computed in fp32.

* **VICReg-pairwise** (per adjacent pair, then averaged over pairs):
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

from collections.abc import Sequence

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
    """``mean(relu(1 - std))`` over features of tokens ``(K, D)`` (std of each feature over K)."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariance entries / D for tokens ``(K, D)``."""
    k, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / max(k - 1, 1)  # (D, D)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def matched_tokens(
    features: torch.Tensor, pairs: Sequence[Sequence], min_pairs: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """Matched token pairs ``[(z_i (K, D), z_j (K, D)), ...]`` in fp32, and the skipped count."""
    out, skipped = [], 0
    for b, sample_pairs in enumerate(pairs):
        for p in sample_pairs:
            if len(p) < min_pairs:
                skipped += 1
                continue
            fi = features[b, p.i].float()  # (N, D)
            fj = features[b, p.j].float()
            dev = fi.device
            out.append((fi[p.idx_i.to(dev)], fj[p.idx_j.to(dev)]))
    return out, skipped


def _vicreg(za: torch.Tensor, zb: torch.Tensor, w: OverlapLossConfig) -> Parts:
    """VICReg terms of matched tokens ``(K, D)`` of two tiles."""
    inv = F.mse_loss(za, zb)
    var = 0.5 * (variance_term(za) + variance_term(zb))
    cov = covariance_term(za) + covariance_term(zb)
    total = w.inv_weight * inv + w.var_weight * var + w.cov_weight * cov
    return {"total": total, "invariance": inv, "variance": var, "covariance": cov}


def densecl_pair(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> Parts:
    """Symmetric InfoNCE over matched tokens ``(K, D)`` of two tiles (positives on the diagonal)."""
    q, k = F.normalize(za, dim=-1), F.normalize(zb, dim=-1)
    logits = q @ k.T / temperature  # (K, K)
    target = torch.arange(len(q), device=q.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    acc = 0.5 * (
        (logits.argmax(1) == target).float().mean() + (logits.argmax(0) == target).float().mean()
    )
    return {"total": loss, "infonce": loss, "accuracy": acc}


def _mean_parts(parts: list[Parts]) -> Parts:
    return {k: torch.stack([p[k] for p in parts]).mean() for k in parts[0]}


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
            "pairs": torch.tensor(float(len(matched))),
            "skipped": torch.tensor(float(skipped)),
        }
        if not matched:
            return features.float().sum() * 0.0, counts
        if cfg.type == "vicreg_pairwise":
            parts = _mean_parts([_vicreg(a, b, cfg) for a, b in matched])
        elif cfg.type == "vicreg_batchwise":
            za = torch.cat([a for a, _ in matched])
            zb = torch.cat([b for _, b in matched])
            parts = _vicreg(za, zb, cfg)
        elif cfg.type == "densecl":
            parts = _mean_parts([densecl_pair(a, b, cfg.temperature) for a, b in matched])
        else:  # dense_vicreg: statistics over every token of every tile
            tiles = features.float().flatten(0, 1)  # (B*T, N, D)
            za = torch.cat([a for a, _ in matched])
            zb = torch.cat([b for _, b in matched])
            var = torch.stack([variance_term(t) for t in tiles]).mean()
            cov = torch.stack([covariance_term(t) for t in tiles]).mean()
            inv = F.mse_loss(za, zb)
            total = cfg.inv_weight * inv + cfg.var_weight * var + cfg.cov_weight * cov
            parts = {"total": total, "invariance": inv, "variance": var, "covariance": cov}
        total = parts.pop("total")
        return total, {**{k: v.detach() for k, v in parts.items()}, **counts}


def build_overlap_loss(cfg: OverlapLossConfig, in_dim: int | None = None) -> OverlapLoss:
    """The configured overlap loss (with its projection head when ``cfg.head``)."""
    return OverlapLoss(cfg, in_dim)
