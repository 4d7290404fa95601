"""File writes that a crash cannot leave half-done."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit flush, ``fsync`` and
    ``os.replace`` it onto ``path``. A crash, an exception or ``kill -9`` mid-write leaves either the old
    file or the new one, never a truncated one (``os.replace`` is atomic within a file system, which is
    why the temporary file lives in the same folder). The parent folder is created when missing.

    Args:
        path: the final file.
        mode: ``"wb"`` (bytes) or ``"w"`` (text, UTF-8).
        fsync: flush the data to disk before the rename (skip only for throw-away cache files).

    Raises:
        OSError: the folder cannot be written; ``path`` is left untouched and the temporary file removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a hidden name unique to this process, so two writers (DDP ranks, parallel jobs) never share one
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
