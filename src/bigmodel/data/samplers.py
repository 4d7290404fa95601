"""A training sampler that a checkpoint can resume in the middle of an epoch.

Why our own: torch's ``RandomSampler`` draws its order from the global RNG and has no position, so a run
resumed from a mid-epoch checkpoint replays the epoch from its start in another order; torchdata's
``StatefulDataLoader`` is not a dependency. This sampler's order is a pure function of
``(seed, epoch, rank)``, and its position is the number of samples already trained on in that epoch,
which the DataModule reads from the trainer's progress when a checkpoint is saved (the loader itself
runs a batch ahead: Lightning prefetches one, workers more), see :class:`bigmodel.data.base.BaseDataModule`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DistributedSampler

log = logging.getLogger(__name__)


class ResumableSampler(DistributedSampler):
    """Shuffled (or with-replacement) sample indices per rank, resumable mid-epoch.

    - ``replacement=False``: every epoch is a permutation of ``range(len(dataset))`` seeded by
      ``seed + epoch``, padded to split evenly, and rank ``r`` takes every ``num_replicas``-th index
      from ``r`` (the same split as torch's ``DistributedSampler``).
    - ``replacement=True``: ``num_samples // num_replicas`` indices drawn uniformly with replacement per
      rank, seeded by ``(seed, epoch, rank)`` (the random-window LM sampler).

    It subclasses ``DistributedSampler`` so that Lightning neither replaces it under DDP nor wraps it
    (it already splits by rank), and Lightning calls :meth:`set_epoch` at every epoch start.

    Args:
        dataset: a sized dataset.
        seed: base seed of the order (``data.seed``).
        num_replicas, rank: the DDP world size and this process's global rank.
        replacement: draw with replacement (``num_samples`` per epoch over all ranks).
        num_samples: samples per epoch over all ranks with ``replacement`` (default ``len(dataset)``).
        drop_last: without replacement, drop the tail that does not split evenly instead of padding.

    Raises:
        ValueError: an empty dataset, or ``num_samples < 1``.
    """

    def __init__(
        self,
        dataset: Sized,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        replacement: bool = False,
        num_samples: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if len(dataset) < 1:
            raise ValueError("ResumableSampler: the dataset is empty.")
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=drop_last
        )
        self.replacement = replacement
        if replacement:
            total = num_samples or len(dataset)
            if total < 1:
                raise ValueError(f"ResumableSampler: num_samples={num_samples} must be >= 1.")
            self.num_samples = total // num_replicas
            self.total_size = self.num_samples * num_replicas
        self._skip = 0  # samples of epoch `_skip_epoch` to leave out: a resume mid-epoch
        self._skip_epoch = -1

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        # distinct streams per (epoch, rank) with replacement; one shared permutation per epoch without
        if self.replacement:
            g.manual_seed((self.seed * 1_000_003 + self.epoch) * 4096 + self.rank)
        else:
            g.manual_seed(self.seed + self.epoch)
        return g

    def _epoch_indices(self) -> list[int]:
        g = self._generator()
        if self.replacement:
            return torch.randint(len(self.dataset), (self.num_samples,), generator=g).tolist()
        order = torch.randperm(len(self.dataset), generator=g).tolist()
        if self.drop_last:
            order = order[: self.total_size]
        else:
            pad = self.total_size - len(order)
            order += (order * (pad // len(order) + 1))[:pad]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        indices = self._epoch_indices()
        if self._skip and self._skip_epoch == self.epoch:
            log.info("Resuming mid-epoch: epoch %d continues after %d samples.", self.epoch, self._skip)
            indices = indices[self._skip :]
        self._skip, self._skip_epoch = 0, -1  # only the first iteration after a resume
        return iter(indices)

    # __len__ stays the full epoch (DistributedSampler's num_samples) even while resuming: Lightning counts
    # the batches of the resumed epoch from the restored progress, against the full length.

    def position(self, samples_done: int) -> dict[str, Any]:
        """The state to save: this epoch and the samples (per rank) already trained on."""
        return {"epoch": int(self.epoch), "samples_done": int(samples_done), "seed": int(self.seed)}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue the epoch of ``state`` after its ``samples_done`` samples, when that epoch comes."""
        if state.get("seed", self.seed) != self.seed:
            log.warning(
                "Resuming with data.seed=%s, but the checkpoint was trained with %s: the epoch restarts "
                "in a new order.", self.seed, state.get("seed"),
            )  # fmt: skip
            return
        self._skip, self._skip_epoch = int(state["samples_done"]), int(state["epoch"])
