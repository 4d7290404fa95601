"""The base LightningDataModule: loader settings and checks shared by every task."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from bigmodel.data.samplers import ResumableSampler
from bigmodel.utils.errors import ConfigError


class BaseDataModule(LightningDataModule):
    """Owns the DataLoader settings; subclasses fill ``self.data_train``, ``self.data_val`` and
    ``self.data_test`` in ``setup``.

    Args:
        batch_size: micro batch size, samples per device per forward/backward (older name of
            ``micro_batch_size``).
        micro_batch_size: when set, replaces ``batch_size``.
        global_batch_size: samples per optimizer step over all devices. Accepted (the data configs carry
            it) but not used here: ``bigmodel.utils.batch.apply_batch_plan`` reads it from the config and
            derives the gradient accumulation before the DataModule exists.
        num_workers: DataLoader worker processes (0 loads in the main process).
        pin_memory: page-locked host memory, useful only with a GPU.
        persistent_workers: keep workers alive between epochs (needs ``num_workers > 0``).
        drop_last: drop the last incomplete training batch.
        seed: seed of the deterministic split.

    Resuming: the training order comes from :class:`~bigmodel.data.samplers.ResumableSampler` (seeded by
    ``seed`` and the epoch, split by rank), and :meth:`state_dict` (saved by Lightning in every
    checkpoint) records how far into its epoch training got, so a run resumed from a mid-epoch
    checkpoint continues with the next batch the uninterrupted run would have seen. Every loader draws
    its workers' base seed from its own generator, not the global RNG, so creating a validation loader
    does not shift the training RNG stream (exact resume needs that).

    Raises:
        ConfigError: in ``setup`` when ``drop_last`` would leave zero training batches, or (in
            :meth:`check_num_classes`) a ``num_classes`` that does not match the data.
    """

    num_classes: int | None = None  # set by classification DataModules; see check_num_classes

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
        seed: int = 42,
        micro_batch_size: int | None = None,
        global_batch_size: int | None = None,  # noqa: ARG002 - read from the config by apply_batch_plan
    ) -> None:
        super().__init__()
        if micro_batch_size is not None:
            batch_size = micro_batch_size
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.drop_last = drop_last
        self.seed = seed
        self.data_train: Dataset | None = None
        self.data_val: Dataset | None = None
        self.data_test: Dataset | None = None
        self._train_sampler: ResumableSampler | None = None
        self._resume_position: dict[str, Any] | None = None

    def check_batch_size(self) -> None:
        """Raise a clear error instead of training on zero batches."""
        n = len(self.data_train)  # type: ignore[arg-type]
        if self.drop_last and n < self.batch_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than the training split ({n} samples) and "
                "data.drop_last=true, so an epoch would have zero batches. Lower data.batch_size "
                f"to at most {n}, or set data.drop_last=false."
            )

    def check_num_classes(self, classes: Sequence[str], where: str) -> None:
        """Check the configured ``num_classes`` (``None``: not set) against the ``classes`` found in
        ``where`` (a file, folder or dataset name), then set it to ``len(classes)``.

        Raises:
            ConfigError: a configured ``num_classes`` other than ``len(classes)``, naming both and the fix.
        """
        if self.num_classes is not None and self.num_classes != len(classes):
            shown = f"{list(classes)[:10]}{' ...' if len(classes) > 10 else ''}"
            raise ConfigError(
                f"data.num_classes={self.num_classes}, but {where} has {len(classes)} classes {shown}; "
                f"set data.num_classes={len(classes)}."
            )
        self.num_classes = len(classes)

    def _loader(self, dataset: Dataset | None, train: bool, **kwargs: Any) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not created this split.")
        sampler = self._resumable_sampler(dataset, replacement=False) if train else None
        if not train and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads eval sets with repeated samples, which
            # would make a DDP test score differ from a single-process one; this one never repeats.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=self.drop_last and train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, train=True)

    # -- resume mid-epoch -------------------------------------------------------------------------------
    def _resumable_sampler(
        self, dataset: Any, replacement: bool, num_samples: int | None = None
    ) -> ResumableSampler:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(
            dataset, self.seed, world, rank, replacement=replacement, num_samples=num_samples,
            drop_last=self.drop_last,
        )  # fmt: skip
        if self._resume_position:
            sampler.resume(self._resume_position)
            self._resume_position = None
        # Lightning warns that a mid-epoch resume "is not resumable" unless the DataLoader itself has a
        # state_dict; here the DataModule carries the position, so the warning would be false.
        warnings.filterwarnings(
            "ignore", message="You're resuming from a checkpoint that ended before the epoch"
        )
        self._train_sampler = sampler
        return sampler

    def state_dict(self) -> dict[str, Any]:
        """``{"train_sampler": {epoch, samples_done, seed}}`` while fitting (saved in the checkpoint by
        Lightning): the samples per rank of the current epoch that were trained on, read from the
        trainer's batch progress (the loader itself has already prefetched further)."""
        trainer, sampler = self.trainer, self._train_sampler
        if trainer is None or sampler is None or trainer.state.fn != "fit":
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"train_sampler": sampler.position(done * self.batch_size)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Lightning restores the DataModule before it asks for the train loader, which then resumes
        self._resume_position = state.get("train_sampler")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)
