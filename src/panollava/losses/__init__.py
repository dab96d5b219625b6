"""Overlap-consistency losses between adjacent views and the dead-loss check."""

from panollava.losses.deadloss import DeadLossError, check_loss_reaches_trainable
from panollava.losses.overlap import (
    OverlapLoss,
    ProjectionHead,
    build_overlap_loss,
    covariance_term,
    densecl_pair,
    variance_term,
)
from panollava.losses.schema import OverlapLossConfig

__all__ = [
    "DeadLossError",
    "OverlapLoss",
    "OverlapLossConfig",
    "ProjectionHead",
    "build_overlap_loss",
    "check_loss_reaches_trainable",
    "covariance_term",
    "densecl_pair",
    "variance_term",
]
