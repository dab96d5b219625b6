"""Overlap-consistency losses between adjacent views and the dead-loss check."""

from panollava._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "DeadLossError": "deadloss",
        "OverlapLoss": "overlap",
        "OverlapLossConfig": "schema",
        "ProjectionHead": "overlap",
        "build_overlap_loss": "overlap",
        "check_loss_reaches_trainable": "deadloss",
        "covariance_term": "overlap",
        "densecl_pair": "overlap",
        "variance_term": "overlap",
    },
)
