"""The base LightningDataModule: loader settings and checks shared by every task."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from bigmodel.data.summary import split_summary
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


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

    Raises:
        ConfigError: in ``setup`` when ``drop_last`` would leave zero training batches, or (in
            :meth:`check_num_classes`) a ``num_classes`` that does not match the data.
    """

    num_classes: int | None = None  # set by classification DataModules; see check_num_classes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's ``setup`` logs the data summary once when it has built the splits, so no
        DataModule needs its own copy (and none can forget it)."""
        super().__init_subclass__(**kwargs)
        if "setup" in cls.__dict__:
            cls.setup = _summarised(cls.__dict__["setup"])  # type: ignore[method-assign]

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

    def log_summary(self) -> None:
        """Log split sizes and per-class counts (:func:`bigmodel.data.summary.split_summary`) once."""
        if getattr(self, "_summary_logged", False) or self.data_train is None:
            return
        self._summary_logged = True
        splits = {"train": self.data_train, "val": self.data_val, "test": self.data_test}
        names = getattr(self, "classes", None) or getattr(self, "class_names", None)
        log.info("%s: %s", type(self).__name__, split_summary(splits, names))

    def _loader(self, dataset: Dataset | None, train: bool, **kwargs: Any) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not created this split.")
        sampler = None
        if not train and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads eval sets with repeated samples, which
            # would make a DDP test score differ from a single-process one; this one never repeats.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=self.drop_last and train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)


def _summarised(setup: Any) -> Any:
    @functools.wraps(setup)
    def wrapped(self: BaseDataModule, *args: Any, **kwargs: Any) -> Any:
        out = setup(self, *args, **kwargs)
        if self.trainer is None or self.trainer.is_global_zero:  # one line per run, not per rank
            self.log_summary()
        return out

    return wrapped
