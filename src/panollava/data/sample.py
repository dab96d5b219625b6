"""The one sample type every collate, dataset and predictor shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["PanoSample"]


@dataclass
class PanoSample:
    """One (panorama, query) pair.

    ``views`` is ``(V, 3, h, w)``, uint8 or float in ``[0, 1]`` as
    :class:`~panollava.views.ViewSet` holds them (global first, then tiles by yaw, per the
    configured strategy); ``answer`` is the training target (``None`` when generating);
    ``references`` holds every reference of the (image, query) pair; ``index`` is the dataset row
    (-1 for ad-hoc questions); ``augment`` the train-time augmentation that was applied.
    """

    views: torch.Tensor
    query: str
    answer: str | None = None
    references: tuple[str, ...] = ()
    url: str = ""
    image: Path | None = None
    index: int = -1
    augment: Any = None
