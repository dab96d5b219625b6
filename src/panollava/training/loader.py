"""A resumable, seeded data loader: exact mid-epoch resume after a crash.

Lightning saves and restores the ``state_dict`` of loaders that implement it. Ours records the
epoch and how many batches the training loop has *consumed* (Lightning prefetches one batch, so
the count of batches merely produced would be one too many), and on restore skips exactly those
indices of the same seeded permutation — no sample is seen twice or lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["ResumableLoader", "SeededSampler"]


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SeededSampler(Sampler[int]):
    """A permutation of ``range(n)`` that depends only on ``(seed, epoch)``; can start mid-way.

    Under ``torch.distributed`` each rank takes every ``world``-th index of the same permutation
    (padded by wrapping so all ranks get the same count), like ``DistributedSampler``.
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch = 0
        self.start = 0  # indices of this epoch to skip (resume)

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch)
        rank, world = _rank_world()
        if world > 1:
            total = -(-self.n // world) * world
            order = (order + order[: total - self.n])[rank::world]  # (ceil(n / world),)
        start, self.start = self.start, 0
        return iter(order[start:])

    def __len__(self) -> int:
        _, world = _rank_world()
        return -(-self.n // world)


class ResumableLoader(DataLoader):
    """``DataLoader`` over a :class:`SeededSampler` with Lightning's ``state_dict`` protocol.

    ``consumed`` must be advanced by the training loop (see ``PanoModule.on_train_batch_end``);
    the epoch advances when an iteration starts after a finished one.
    """

    def __init__(
        self,
        dataset: Dataset | Sequence,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        num_workers: int = 0,
    ) -> None:
        self.seeded = SeededSampler(len(dataset), seed=seed, shuffle=shuffle)
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=self.seeded,
            collate_fn=collate_fn,
            num_workers=num_workers,
        )
        self.consumed = 0  # batches of the current epoch already used for training
        self._started = False
        self._resume_pending = False

    def __iter__(self):
        if self._resume_pending:
            self._resume_pending = False
            if self.consumed >= len(self):  # saved right at the end of an epoch
                self._next_epoch()
        elif self._started:
            self._next_epoch()
        self._started = True
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:  # augmentation draws depend on (seed, epoch, index) only
            set_epoch(self.seeded.epoch)
        return super().__iter__()

    def _next_epoch(self) -> None:
        self.seeded.epoch += 1
        self.seeded.start = 0
        self.consumed = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.seeded.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seeded.epoch = int(state["epoch"])
        self.consumed = int(state["consumed"])
        self.seeded.start = self.consumed * self.batch_size
        self._resume_pending = True
