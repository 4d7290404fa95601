"""Checksum-verified downloads for datasets that users with internet may fetch (tests never do)."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(
    url: str, dest: str | Path, sha256: str | None, local_hint: str | Path, timeout_s: float = 30
) -> Path:
    """Return ``dest`` after downloading ``url`` to it (atomically) unless it already exists, verifying
    ``sha256`` (hex) when given.

    Args:
        url: where to download from.
        dest: destination file (in ``paths.cache_dir``, never in a data directory).
        sha256: expected checksum, or None to skip the check.
        local_hint: the local path the user could provide instead; named in the error.
        timeout_s: network timeout in seconds.

    Raises:
        ConfigError: no network (naming the URL, the expected local path and the checksum), or a
            checksum mismatch (the bad download is deleted).
    """
    dest = Path(dest)
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        log.info("Downloading %s -> %s", url, dest)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as f:
                while block := r.read(1 << 20):
                    f.write(block)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ConfigError(
                f"Could not download {url} ({e}). Without network, put the file at {local_hint} "
                f"(sha256 {sha256 or 'not fixed'}) and point paths.data_dir at its root."
            ) from None
        tmp.replace(dest)
    if sha256:
        got = sha256_file(dest)
        if got != sha256:
            dest.unlink()
            raise ConfigError(
                f"Checksum mismatch for {url}: got sha256 {got}, expected {sha256}. The file was deleted; "
                f"retry, or place a verified copy at {local_hint}."
            )
    return dest
