"""Panorama caption datasets: annotation rows -> samples of view pixels + query + reference(s).

Two modes:

* ``train`` — one item per caption row (``answer`` = that caption), optional augmentation;
* ``eval`` — one item per (image, query) pair with all its references (grouped protocol).

Tables are read eagerly but images lazily: nothing is opened until ``__getitem__``. An image that
fails only when it is loaded (``data.check_images: header`` lets some corrupt data through) is an
error, or with ``data.skip_invalid`` (train mode) skipped: the next readable row takes its place
and every skip is logged with a running count. With
augmentation on, the epoch must be known: call :meth:`PanoramaDataset.set_epoch` when an epoch
starts (DataLoader workers get a fresh copy of the dataset per epoch), or index with
``(epoch, index)`` tuples.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch.utils.data import Dataset

from panollava.data.augment import AugmentParams, augment_erp, sample_generator
from panollava.data.images import ImageLoadError, decode_erp
from panollava.data.quic360 import (
    Annotation,
    DataError,
    PairGroup,
    group_pairs,
    pair_key,
    read_split,
)
from panollava.data.sample import PanoSample
from panollava.data.schema import AugmentConfig, DataConfig, ImageConfig
from panollava.data.validate import ensure_valid
from panollava.views import build_viewset, required_erp_width, unit_float
from panollava.views.schema import ViewsConfig

__all__ = ["DatasetMode", "PanoramaDataset", "build_dataset", "split_rows"]


class DataSettings(Protocol):
    """The config sections a dataset reads (the root ``PanoConfig`` is one)."""

    seed: int
    data: DataConfig
    image: ImageConfig
    views: ViewsConfig


log = logging.getLogger(__name__)

DatasetMode = Literal["train", "eval"]
SPLITS = ("train", "valid", "test")


class PanoramaDataset(Dataset):
    """Samples of annotation rows (see the module docstring for modes and epochs)."""

    def __init__(
        self,
        rows: Sequence[Annotation],
        *,
        mode: DatasetMode,
        views: ViewsConfig,
        image: ImageConfig | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        skip_invalid: bool = False,
        view_cache_mb: float = 0.0,
    ) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        if augment is not None and augment.enabled and mode != "train":
            raise ValueError("augmentation is for training only (mode='train')")
        self.mode = mode
        self.views_cfg = views
        self.image_cfg = image or ImageConfig()
        self.augment = augment if augment is not None and augment.enabled else None
        self.seed = seed
        self.skip_invalid = skip_invalid
        self.skipped: set[int] = set()  # rows skipped at load time (in this process)
        self.epoch = 0
        self.min_width = required_erp_width(views)
        if view_cache_mb > 0 and self.augment is not None:
            raise ValueError("view_cache_mb: augmented views differ every epoch; not cached")
        self.view_cache: dict[Path, torch.Tensor] = {}  # image -> views (V, 3, h, w)
        self._cache_left = int(view_cache_mb * 2**20)  # bytes
        self.groups: list[PairGroup] = group_pairs(rows)
        self.rows: list[Annotation] = list(rows)
        if mode == "train":
            refs = {pair_key(g.rows[0]): g.references for g in self.groups}
            self._refs = [refs[pair_key(r)] for r in self.rows]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows) if self.mode == "train" else len(self.groups)

    def _item(self, index: int) -> tuple[Annotation, str | None, tuple[str, ...]]:
        if self.mode == "train":
            row = self.rows[index]
            return row, row.reference, self._refs[index]
        group = self.groups[index]
        return group.rows[0], None, group.references

    def load_views(
        self, row: Annotation, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, AugmentParams | None]:
        """Decode ``row``'s panorama, augment it (train mode, if enabled), cut the views."""
        cached = self.view_cache.get(row.image) if row.image is not None else None
        if cached is not None:
            return cached, None
        if row.image is None:
            raise DataError(
                f"{row.where}: {row.url} is an http(s) URL with no local copy; set "
                "data.cache_dir or run `panollava data download`"
            )
        try:  # (3, H, W) as decoded: the same views as `infer` (data.images.load_views)
            erp = decode_erp(row.image, cfg=self.image_cfg, min_width=self.min_width)
        except ImageLoadError as exc:
            raise ImageLoadError(f"{row.where}: {exc}") from None
        params = None
        if self.augment is not None and generator is not None:
            erp, params = augment_erp(unit_float(erp), self.augment, generator)
        views = build_viewset(erp, self.views_cfg).pixels  # (V, 3, h, w)
        size = views.numel() * views.element_size()
        if size <= self._cache_left:  # a budget only without augmentation (__init__)
            self.view_cache[row.image] = views
            self._cache_left -= size
        return views, params

    def __getitem__(self, key: int | tuple[int, int]) -> PanoSample:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        for k in range(len(self)):
            at = (index + k) % len(self)
            row, answer, refs = self._item(at)
            gen = sample_generator(self.seed, epoch, at) if self.augment is not None else None
            try:
                views, params = self.load_views(row, gen)
            except (ImageLoadError, DataError) as exc:
                if not (self.skip_invalid and self.mode == "train"):
                    raise
                self.skipped.add(at)
                log.warning(
                    "data.skip_invalid: skipped %s at load time (%d row(s) skipped so far): %s",
                    row.where,
                    len(self.skipped),
                    exc,
                )
                continue
            return PanoSample(
                views, row.query, answer, refs, row.url, row.image, at, augment=params
            )
        raise DataError(f"no row of {len(self)} has a readable image (data.skip_invalid)")


def split_rows(cfg: DataSettings, split: str) -> list[Annotation]:
    """All rows of ``split`` (``train``/``valid``/``test``): every file listed in ``data``."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    files = getattr(cfg.data, split)
    if not files:
        raise DataError(f"no files for split {split!r}: set data.{split} in the config")
    d = cfg.data
    return read_split(files, columns=d.columns, image_root=d.image_root, cache_dir=d.cache_dir)


def build_dataset(
    cfg: DataSettings,
    split: str,
    *,
    mode: DatasetMode = "train",
    run_dir: Path | None = None,
) -> PanoramaDataset:
    """The dataset of ``split`` after validation (:func:`~panollava.data.validate.ensure_valid`).

    Non-2:1 images are warnings unless ``image.aspect_policy`` is ``error``; in ``eval`` mode
    duplicate rows are warnings too (they stay extra references of their pair).
    """
    rows = split_rows(cfg, split)
    allow = [] if cfg.image.aspect_policy == "error" else ["aspect"]
    if mode == "eval":
        allow.append("duplicate")
    rows = ensure_valid(
        rows,
        images=cfg.data.check_images,
        skip_invalid=cfg.data.skip_invalid,
        run_dir=run_dir,
        allow=allow,
        aspect_tolerance=cfg.image.aspect_tolerance,
        image_cfg=cfg.image,
    )
    return PanoramaDataset(
        rows,
        mode=mode,
        views=cfg.views,
        image=cfg.image,
        augment=cfg.data.augment if mode == "train" else None,
        seed=cfg.seed,
        skip_invalid=cfg.data.skip_invalid,
        view_cache_mb=cfg.data.view_cache_mb,
    )
