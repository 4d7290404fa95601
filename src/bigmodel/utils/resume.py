"""Which checkpoint of a run to resume from when its ``last.ckpt`` is damaged (issue #13)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def loads(path: Path) -> bool:
    """``path`` is a checkpoint ``torch.load(weights_only=True)`` opens: the zip structure and the pickled
    index are intact (memory-mapped, so the tensors' bytes are not read). Catches zero-byte, truncated
    and overwritten files; it cannot see flipped bits inside a tensor."""
    from bigmodel.utils.errors import ConfigError
    from bigmodel.utils.run import is_readable_checkpoint, load_checkpoint

    if not is_readable_checkpoint(path):
        return False
    if path.is_dir():
        return True  # sharded: meta.pt is checked by is_readable_checkpoint
    try:
        load_checkpoint(path, mmap=True)
    except ConfigError:
        return False
    return True


def _compressed(path: Path) -> bool:
    """``path`` was written by ``bigmodel.compress`` (``checkpoint["compression"]``): an inference model
    (quantized, pruned, fp16) that training must never resume from, although it sits in ``checkpoints/``."""
    from bigmodel.utils.run import load_checkpoint

    if path.is_dir():
        return False
    ckpt = load_checkpoint(path, mmap=True)
    return isinstance(ckpt, dict) and bool(ckpt.get("compression"))


def newest_readable_checkpoint(run: Path) -> Path | None:
    """The run's ``checkpoints/last.ckpt`` when it loads; else its newest other checkpoint that loads
    (step checkpoints in ``checkpoints/steps/``, then epoch/best ones), with a warning naming the
    damaged file and the one used instead. Outputs of ``bigmodel.compress`` beside them are skipped.
    ``None`` when none loads."""
    ckpts = run / "checkpoints"
    last = ckpts / "last.ckpt"
    if loads(last):
        return last
    others = [p for p in [*ckpts.glob("steps/*.ckpt"), *ckpts.glob("*.ckpt")] if p.name != "last.ckpt"]
    for p in sorted(others, key=lambda p: p.stat().st_mtime, reverse=True):
        if not loads(p):
            log.warning("ckpt_path=last: skipping unreadable checkpoint %s", p)
            continue
        if _compressed(p):
            log.info("ckpt_path=last: skipping %s, a compressed inference model (bigmodel.compress)", p)
            continue
        if last.exists():
            log.warning(
                "ckpt_path=last: %s cannot be read (empty, truncated or corrupt); resuming from the newest "
                "readable checkpoint of that run instead: %s", last, p,
            )  # fmt: skip
        return p
    if last.exists():
        log.warning("ckpt_path=last: %s cannot be read and its run has no other readable checkpoint.", last)
    return None
