"""Stop all ranks together when any rank decides to stop.

A callback that sets ``trainer.should_stop`` on one rank only (a time budget, a flag file, a NaN check on
the local loss) leaves the other ranks training: they block in the next collective, and the job dies on a
gloo/NCCL "connection reset" without its final checkpoint. Lightning's own ``EarlyStopping`` syncs its
decision; this callback does the same for everyone else's, with the public
``Strategy.reduce_boolean_decision`` (one tiny all-reduce per batch; a no-op on one process).
"""

from __future__ import annotations

from typing import Any

import lightning as L


class SyncStop(L.Callback):
    """After each training batch, validation and training epoch: ``should_stop`` = any rank's ``should_stop``.
    Added by ``bigmodel.train`` after the configured callbacks, so it sees their decisions."""

    @staticmethod
    def _sync(trainer: L.Trainer) -> None:
        if trainer.world_size > 1:
            trainer.should_stop = trainer.strategy.reduce_boolean_decision(
                bool(trainer.should_stop), all=False
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._sync(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._sync(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(trainer)
