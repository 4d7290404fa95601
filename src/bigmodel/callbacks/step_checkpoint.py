"""Rolling checkpoints every N optimizer steps and/or every T seconds, apart from the best-by-metric one.

A long run that validates rarely (or a step-based LM run) otherwise loses everything since the last
validation when it is killed. Config: ``callbacks/model_checkpoint_steps.yaml``.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


class StepCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (``monitor=None``) saving ``<dirpath>/step_{step:08d}.ckpt`` every
    ``every_n_train_steps`` optimizer steps and/or every ``train_time_interval_s`` seconds of training,
    keeping the newest ``keep_last_k``; each save also becomes ``last.ckpt`` (``last_path``, a hard link:
    no second write), so ``ckpt_path=last`` resumes from it.

    Its own name (not ``ModelCheckpoint``) keeps it out of ``trainer.checkpoint_callback`` and of the
    "best checkpoint" lookups: it never monitors a metric.

    Args:
        dirpath: folder of the step checkpoints (``checkpoints/steps``).
        every_n_train_steps: save every N optimizer steps (``null``/0: off).
        train_time_interval_s: save when this many seconds passed since the last save (``null``: off).
        keep_last_k: step checkpoints kept, oldest removed first (``-1``: all).
        last_path: the file to point at the newest save (``null``: none).
        **kwargs: more ``ModelCheckpoint`` arguments (``filename``, ``save_weights_only``...).

    Raises:
        ValueError: neither trigger set, both set (Lightning allows one), or ``keep_last_k`` 0 or < -1.
    """

    def __init__(
        self,
        dirpath: str,
        every_n_train_steps: int | None = None,
        train_time_interval_s: float | None = None,
        keep_last_k: int = 2,
        last_path: str | None = None,
        filename: str = "step_{step:08d}",
        **kwargs: Any,
    ) -> None:
        steps = every_n_train_steps or None
        if (steps is None) == (train_time_interval_s is None):
            raise ValueError(
                "callbacks.model_checkpoint_steps: set exactly one of every_n_train_steps or "
                f"train_time_interval_s (got {every_n_train_steps!r} and {train_time_interval_s!r})."
            )
        if keep_last_k == 0 or keep_last_k < -1:
            raise ValueError(
                f"callbacks.model_checkpoint_steps.keep_last_k={keep_last_k}: use >= 1, or -1 for all."
            )
        interval = timedelta(seconds=train_time_interval_s) if train_time_interval_s is not None else None
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=None,
            save_top_k=-1,  # pruning is ours: Lightning's top-k needs a monitor for k > 1
            save_last=False,
            every_n_train_steps=steps,
            train_time_interval=interval,
            save_on_train_epoch_end=False,
            auto_insert_metric_name=False,
            **kwargs,
        )
        self.keep_last_k = keep_last_k
        self.last_path = last_path

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        # with monitor=None, Lightning's best_model_path is the newest save: a new one means "saved now"
        before = self.best_model_path
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if self.best_model_path != before and trainer.is_global_zero:
            self._point_last_at(Path(self.best_model_path))
            self._prune()

    def _point_last_at(self, path: Path) -> None:
        if not self.last_path:
            return
        last = Path(self.last_path)
        tmp = last.with_name(f".{last.name}.{os.getpid()}.link")
        try:
            tmp.unlink(missing_ok=True)
            os.link(path, tmp)  # the same bytes under a second name: atomic via rename, nothing re-written
            os.replace(tmp, last)
        except OSError:  # a file system without hard links
            tmp.unlink(missing_ok=True)
            with open(path, "rb") as src, atomic_write(last, "wb") as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)

    def _prune(self) -> None:
        if self.keep_last_k < 0 or not self.dirpath:
            return
        saved = sorted(Path(self.dirpath).glob("*.ckpt"), key=lambda p: (p.stat().st_mtime, p.name))
        for old in saved[: -self.keep_last_k]:
            old.unlink(missing_ok=True)  # last.ckpt is another name of its inode: kept

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        return  # step/time triggers only; the best-by-metric checkpoint is callbacks.model_checkpoint
