"""A callback that decides to stop on rank 0 only (like a time budget or a flag file), for DDP tests."""

from __future__ import annotations

from typing import Any

import lightning as L


class StopOnRankZero(L.Callback):
    def __init__(self, after_batches: int = 2) -> None:
        self.after_batches = after_batches

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_rank == 0 and batch_idx + 1 >= self.after_batches:
            trainer.should_stop = True
