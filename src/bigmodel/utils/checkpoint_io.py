"""Checkpoint writing that a crash cannot leave half-done, and that reaches the disk before it counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from bigmodel.utils.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local writes go through :func:`bigmodel.utils.io.atomic_write`.

    What this adds over Lightning 2.6.6's own save (``lightning.fabric.utilities.cloud_io._atomic_save``,
    which serialises into memory and writes through an fsspec transaction):

    - **fsync** before the rename, so a power loss after ``last.ckpt`` was "saved" cannot leave an empty
      or truncated file behind the new name;
    - the temporary file lives **in the checkpoint folder**, so ``os.replace`` is an atomic rename; fsspec's
      local transaction writes to the system temp dir and ``shutil.move``\\ s it, which is a copy (not atomic)
      when that dir is on another file system;
    - ``torch.save`` streams into the file instead of a full in-memory copy of the checkpoint first.

    Remote paths (``s3://``, ``gs://``...) keep Lightning's own save. Reading is Lightning's.

    Raises:
        OSError: when the folder cannot be written; the final path and any earlier checkpoint are left as
            they were.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_write(path, "wb") as f:
            torch.save(checkpoint, f)
