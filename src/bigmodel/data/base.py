"""The base LightningDataModule: loader settings and checks shared by every task."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, RandomSampler, default_collate

from bigmodel.data.samplers import ResumableSampler
from bigmodel.data.semi import FewLabelSpec, carve_few_labels, save_labeled_ids, views_collate
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
        labels_per_class, labeled_fraction: keep only this many (this fraction of) labelled training
            items per class, seeded and stratified; the rest of the training split becomes the unlabelled
            pool ``data_unlabeled`` (see :mod:`bigmodel.data.semi`). Val and test are untouched.
        unlabeled_root: a folder (text: a file) of unlabelled items added to the pool; modalities that
            support it implement ``load_unlabeled_root``.
        weak_transforms, strong_transforms: per-item augmentation lists (Hydra configs) applied to each
            unlabelled item, after the training transform, to make its weak and strong views.

    Resuming: the training order comes from :class:`~bigmodel.data.samplers.ResumableSampler` (seeded by
    ``seed`` and the epoch, split by rank), and :meth:`state_dict` (saved by Lightning in every
    checkpoint) records how far into its epoch training got, so a run resumed from a mid-epoch
    checkpoint continues with the next batch the uninterrupted run would have seen. Every loader draws
    its workers' base seed from its own generator, not the global RNG, so creating a validation loader
    does not shift the training RNG stream (exact resume needs that).

    Raises:
        ConfigError: in ``setup`` when ``drop_last`` would leave zero training batches, a bad few-label
            setting (see :func:`bigmodel.data.splits.few_label_split`), or (in :meth:`check_num_classes`) a
            ``num_classes`` that does not match the data.
    """

    num_classes: int | None = None  # set by classification DataModules; see check_num_classes
    collate: Any = None  # the modality's collate function; None = torch's default_collate

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
        labels_per_class: int | None = None,
        labeled_fraction: float | None = None,
        unlabeled_root: str | None = None,
        weak_transforms: Any = None,
        strong_transforms: Any = None,
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
        self.few_labels = FewLabelSpec(
            labels_per_class, labeled_fraction, unlabeled_root, weak_transforms, strong_transforms
        )
        self.data_unlabeled: Dataset | None = None
        self.labeled_record: dict[str, Any] | None = None
        self.unlabeled_batch_size: int | None = None  # set by a semi-supervised model (mu x batch_size)
        self._train_sampler: ResumableSampler | None = None
        self._resume_position: dict[str, Any] | None = None

    def apply_few_labels(self) -> None:
        """Cut ``data_train`` down to its labelled subset and build ``data_unlabeled``; call at the end of
        ``setup``. Does nothing without ``labels_per_class``/``labeled_fraction``/``unlabeled_root``."""
        if not self.few_labels.active or self.labeled_record is not None:
            return
        extra = None
        if self.few_labels.unlabeled_root is not None:
            extra = self.load_unlabeled_root(Path(self.few_labels.unlabeled_root))
        self.data_train, self.data_unlabeled, self.labeled_record = carve_few_labels(
            self.data_train, self.few_labels, self.seed, getattr(self, "classes", None), extra
        )
        save_labeled_ids(self.labeled_record, self.trainer)

    def load_unlabeled_root(self, root: Path) -> Dataset:
        """A dataset of ``(x, -1)`` items from an unlabelled-only folder; modalities override it."""
        raise ConfigError(f"data.unlabeled_root is not supported by {type(self).__name__}; remove it.")

    def enable_unlabeled(self, mu: int) -> None:
        """Make ``train_dataloader`` yield ``{"labeled": batch, "unlabeled": views}`` with ``mu`` x
        ``batch_size`` unlabelled items per step (called by a semi-supervised model before training).

        Raises:
            ConfigError: this DataModule has no unlabelled pool.
        """
        if self.data_unlabeled is None or len(self.data_unlabeled) == 0:
            raise ConfigError(
                f"model=semi_supervised needs an unlabelled pool, but {type(self).__name__} has none: set "
                "data.labels_per_class=N (or data.labeled_fraction=f) to keep few labels and pool the rest, "
                "or data.unlabeled_root=<folder>; or train with model=classifier."
            )
        self.unlabeled_batch_size = int(mu) * self.batch_size

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

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        if self.unlabeled_batch_size is None:
            return self._loader(self.data_train, train=True)
        return self._semi_supervised_loader()

    def _semi_supervised_loader(self) -> CombinedLoader:
        # An epoch is one pass over the unlabelled pool; the (small) labelled set is drawn in full batches,
        # reshuffled on every pass (RandomSampler with num_samples > len chains permutations), as FixMatch does.
        common = dict(
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
        )
        collate = self.collate or default_collate
        unlabeled = DataLoader(
            self.data_unlabeled, batch_size=self.unlabeled_batch_size, shuffle=True, drop_last=True,
            collate_fn=views_collate(collate), **common,
        )  # fmt: skip
        if len(unlabeled) == 0:
            raise ConfigError(
                f"The unlabelled pool ({len(self.data_unlabeled)} items) is smaller than one unlabelled batch "
                f"({self.unlabeled_batch_size} = model.mu x data.batch_size); lower model.mu or data.batch_size."
            )
        sampler = RandomSampler(self.data_train, num_samples=self.batch_size * len(unlabeled))
        labeled = DataLoader(
            self.data_train, batch_size=self.batch_size, sampler=sampler, drop_last=True, collate_fn=collate, **common
        )  # fmt: skip
        return CombinedLoader({"labeled": labeled, "unlabeled": unlabeled}, mode="min_size")

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
        # the labelled subset of a few-label run travels with the weights too
        state: dict[str, Any] = {"labeled_ids": self.labeled_record} if self.labeled_record else {}
        trainer, sampler = self.trainer, self._train_sampler
        if trainer is None or sampler is None or trainer.state.fn != "fit":
            return state
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {**state, "train_sampler": sampler.position(done * self.batch_size)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Lightning restores the DataModule before it asks for the train loader, which then resumes
        self._resume_position = state.get("train_sampler")

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
