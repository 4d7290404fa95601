"""Checkpoint writing that a crash cannot leave half-done."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in the same folder, fsync it, then ``os.replace`` it
    onto the final name. A crash or ``kill -9`` mid-save leaves either the old file or the new one,
    never a truncated ``.ckpt``. Leftover ``*.tmp`` files from a crash are harmless and ignored.

    Raises:
        OSError: when the folder cannot be written; the final path is left untouched.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
