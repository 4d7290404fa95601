"""Lightning's ``CSVLogger``, safe when a later stage runs in a fresh process.

Lightning's CSV writer knows only the columns it logged itself. Under ``trainer.strategy=ddp_spawn`` the
test stage runs in new processes whose writer has never seen the fit columns (``val/acc``...), so adding
the test columns rewrites ``metrics.csv`` with a header that lacks them and fails with "dict contains
fields not in fieldnames" (no metrics.json). Before each save, this logger adds the existing file's
header to the writer's columns (public ``ExperimentWriter`` attributes), so the rewrite keeps them.
"""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.utilities import rank_zero_only


class CSVLogger(_LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` (same arguments) that keeps the columns already in
    ``<save_dir>/<name>/<version>/metrics.csv`` when a new process appends to it, and flushes its rows
    whenever a checkpoint is saved."""

    @rank_zero_only
    def save(self) -> None:
        writer = self.experiment
        path = writer.metrics_file_path
        if writer.metrics and os.path.isfile(path):
            with open(path, newline="") as f:
                header = next(csv.reader(f), [])
            missing = [k for k in header if k not in writer.metrics_keys]
            if missing:
                writer.metrics_keys.extend(missing)
                writer.metrics_keys.sort()  # Lightning writes sorted headers
        super().save()

    def after_save_checkpoint(self, checkpoint_callback) -> None:  # noqa: ANN001 - Lightning's signature
        # Lightning writes metrics.csv every flush_logs_every_n_steps (100): a run killed after a checkpoint
        # would lose the rows up to it, and its resumed run's log would have a gap. Flush with every save.
        super().after_save_checkpoint(checkpoint_callback)
        self.save()
