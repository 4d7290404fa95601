"""Lightning's ModelCheckpoint with two lifecycle fixes: ``last.ckpt`` is always the newest state, and a
resume into a new run directory keeps the earlier best checkpoints in the top-k comparison."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from weakref import proxy

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint

log = logging.getLogger(__name__)


class ModelCheckpoint(_LightningModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` (same arguments) where:

    - ``save_last=True`` writes ``<dirpath>/last.ckpt`` after every validation, after the last batch of
      every training epoch (unless a validation follows it) and at the end of training, whenever the
      global step moved since the last write.
      Lightning itself writes ``last.ckpt`` only in a step where a top-k checkpoint is saved, so after the
      best epoch ``last.ckpt`` went stale and ``ckpt_path=last`` threw away the later epochs.
    - ``load_state_dict`` from a checkpoint of another run directory (every resume writes into a new run
      dir) keeps ``best_model_score`` / ``best_k_models`` of the checkpoints that still exist, so the first
      save after a resume is compared with the old best instead of becoming "best" by default. Files of
      the old run are never deleted (Lightning only removes files inside ``dirpath``).

    The class keeps Lightning's name so its state key (``ModelCheckpoint{...}``) matches checkpoints
    written by the plain Lightning callback.
    """

    def __init__(self, *args: Any, save_last: bool | None = None, **kwargs: Any) -> None:
        if save_last not in (None, False, True):
            raise ValueError(f"ModelCheckpoint(save_last={save_last!r}): use true or false.")
        # Lightning's own last-writing is off: this class writes last.ckpt itself, on every new step.
        super().__init__(*args, save_last=False, **kwargs)
        self.keep_last = bool(save_last)
        self._last_written: tuple[int, str] = (-1, "")

    # --- last.ckpt: the newest state ---------------------------------------------------------------

    def _write_last(self, trainer: Trainer, where: str) -> None:
        if (
            not self.keep_last
            or trainer.sanity_checking
            or trainer.fast_dev_run
            or trainer.state.fn != "fit"
            or (trainer.global_step, where) == self._last_written
            # after validation the state holds new scores (early stopping, best): write again at that step
            or (trainer.global_step == self._last_written[0] and where != "validation")
        ):
            return
        path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        self.last_model_path = path  # before saving: it is part of the saved state
        trainer.save_checkpoint(path, self.save_weights_only)
        self._last_written = (trainer.global_step, where)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._write_last(trainer, "validation")

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        # The end of an epoch is saved here, after its last batch, not in on_train_epoch_end: Lightning 2.6
        # resumes an epoch-end checkpoint wrongly (the next epoch ends after one batch and the sampler
        # epochs shift by one), while a checkpoint of the last batch resumes exactly.
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch and not _validates_now(trainer):
            self._write_last(trainer, "batch")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._write_last(trainer, "end")  # e.g. max_steps reached in the middle of an epoch

    # --- resume: keep the earlier best -------------------------------------------------------------

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath", self.dirpath)
        if old_dir == self.dirpath:
            super().load_state_dict(state_dict)
            return
        if state_dict.get("monitor") != self.monitor:
            log.warning(
                "Resuming: the checkpoint's ModelCheckpoint monitored %r, this run monitors %r; the old best "
                "checkpoints are not compared with the new ones.",
                state_dict.get("monitor"),
                self.monitor,
            )
            return
        # Only checkpoints that still exist can stay "best": best_model_path is what gets tested.
        kept = {p: s for p, s in (state_dict.get("best_k_models") or {}).items() if Path(p).is_file()}
        if self.save_top_k > 0:  # a smaller save_top_k than before keeps the best ones
            ranked = sorted(kept, key=kept.get, reverse=self.mode == "max")
            kept = {p: kept[p] for p in ranked[: self.save_top_k]}
        if not kept or self.save_top_k == 0:
            return
        pick = min if self.mode == "min" else max
        self.best_k_models = dict(kept)
        self.best_model_path = pick(kept, key=kept.get)
        self.best_model_score = kept[self.best_model_path]
        if len(kept) == self.save_top_k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(kept, key=kept.get)
            self.kth_value = kept[self.kth_best_model_path]
        log.info(
            "Resuming: keeping the earlier best checkpoint %s (%s=%.5f) in the top-%d comparison.",
            self.best_model_path,
            self.monitor,
            float(self.best_model_score),
            self.save_top_k,
        )


def _validates_now(trainer: Trainer) -> bool:
    """Whether a validation runs right after this (last) batch of the epoch: then ``on_validation_end``
    writes ``last.ckpt`` with the new scores. Lightning's own rule for epoch-end validation."""
    if not trainer.enable_validation or trainer.check_val_every_n_epoch is None:
        return False
    n_val = trainer.num_val_batches
    n_val = sum(n_val) if isinstance(n_val, list) else n_val
    return bool(n_val) and (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0
