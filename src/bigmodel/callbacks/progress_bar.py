"""Lightning's ``RichProgressBar``, redrawn every ``refresh_rate`` training batches instead of every batch.

Lightning's own bar (2.6) reads ``refresh_rate`` only as on/off: each training batch it updates the task,
recomputes the progress-bar metrics (``trainer.progress_bar_metrics``: a pass over the result collection
and a ``.item()`` per value, a device sync on GPU) and redraws, about 0.5 ms/step on CPU (issue #17).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar as _LightningRichProgressBar


class RichProgressBar(_LightningRichProgressBar):
    """``RichProgressBar`` whose training bar and metrics are refreshed on every ``refresh_rate``-th
    training batch and on the last batch of the epoch (validation is unchanged). Same arguments as
    Lightning's; ``refresh_rate=0`` disables the bar."""

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = batch_idx + 1
        if n % max(int(self.refresh_rate), 1) == 0 or n == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
