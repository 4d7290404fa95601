"""The one downloader: checksum-verified downloads for datasets that users with internet may fetch
(tests never do; they replace ``urllib.request.urlopen``)."""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from pathlib import Path

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | Path, sha256: str, fix: str = "") -> None:
    """Check a file against its expected sha256 (hex); the file is left in place (it may be the user's).

    Raises:
        ConfigError: a mismatch, naming the file, both checksums and ``fix`` (what to do about it).
    """
    got = sha256_file(path)
    if got != sha256:
        raise ConfigError(f"{path} has sha256 {got}, expected {sha256}. {fix}".rstrip())


def fetch(
    url: str,
    dest: str | Path,
    sha256: str | None,
    local_hint: str | Path,
    timeout_s: float = 30,
    how: str | None = None,
) -> Path:
    """Return ``dest`` after downloading ``url`` to it (atomically: an interrupted download leaves no
    ``dest``) unless it already exists, verifying ``sha256`` (hex) when given.

    Args:
        url: where to download from.
        dest: destination file (in ``paths.cache_dir``, never in a data directory).
        sha256: expected checksum, or None to skip the check (the caller then verifies the content).
        local_hint: the local path the user could provide instead; named in the error.
        timeout_s: network timeout in seconds.
        how: what to do without network, for the error message (default: put the file at ``local_hint``).

    Raises:
        ConfigError: no network (naming the URL, the expected local path and the checksum), or a
            checksum mismatch (the bad download is deleted).
    """
    dest = Path(dest)
    how = how or (
        f"Without network, put the file at {local_hint} (sha256 {sha256 or 'not fixed'}) and point "
        "paths.data_dir at its root."
    )
    if not dest.is_file():
        log.info("Downloading %s -> %s", url, dest)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r, atomic_write(dest, "wb") as f:
                while block := r.read(1 << 20):
                    f.write(block)
        except OSError as e:
            raise ConfigError(f"The download failed ({e}) from {url}. {how}") from None
    if sha256:
        try:
            verify_sha256(dest, sha256)
        except ConfigError as e:
            dest.unlink()
            raise ConfigError(
                f"Checksum mismatch for {url}: {e} The download was deleted; retry, or place a verified copy "
                f"at {local_hint}."
            ) from None
    return dest
