"""Find, download and verify the public audio datasets (FSDD, Speech Commands v0.02).

Local files always win and nothing here writes into ``data_dir``: downloads and extractions go to
``cache_dir``. Without local files and without network the error names the URL, the expected path and
the expected checksum, so the files can be fetched by hand.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import zipfile
from pathlib import Path

from bigmodel.data.download import fetch, verify_sha256
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
# sha256 of the `sha256sum` lines of the 3,000 recordings, sorted by path (GitHub archives are not
# byte-stable, so the content is verified rather than the zip):
#   find fsdd/recordings -name '*.wav' | LC_ALL=C sort | xargs sha256sum | sha256sum
FSDD_RECORDINGS_SHA256 = "8f12bbbd51d141d7b73139fc9ba83cf9aaea4b7a385284e7710430761b28b673"

SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_ARCHIVE = "speech_commands_v0.02.tar.gz"
# the checksum torchaudio's SPEECHCOMMANDS dataset checks for the same URL
SPEECH_COMMANDS_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"


def recordings_manifest_sha256(folder: Path, prefix: str = "fsdd/recordings") -> str:
    """The manifest hash of ``folder/*.wav`` as ``sha256sum`` would print it for ``prefix/<name>``."""
    lines = []
    for path in sorted(folder.glob("*.wav"), key=lambda p: p.name.encode()):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {prefix}/{path.name}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _has_wavs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.wav"))


def find_fsdd(data_dir: Path, cache_dir: Path | None, download: bool) -> Path:
    """The FSDD ``recordings/`` folder: ``<data_dir>/fsdd/recordings``, else a verified download in
    ``<cache_dir>/fsdd/recordings`` (downloaded now when ``download``).

    Raises:
        ConfigError: no recordings and no download possible, or a download whose content hash differs.
    """
    local = data_dir / "fsdd" / "recordings"
    if _has_wavs(local):
        return local
    cached = cache_dir / "fsdd" / "recordings" if cache_dir else None
    if cached is not None and _has_wavs(cached):
        return cached
    how = (
        f"Download {FSDD_URL} and put its recordings/*.wav (3,000 files; manifest sha256 "
        f"{FSDD_RECORDINGS_SHA256}, computed as `find fsdd/recordings -name '*.wav' | LC_ALL=C sort | "
        f"xargs sha256sum | sha256sum`) at {local}, or point paths.data_dir at a folder holding fsdd/recordings/."
    )
    if not download or cached is None:
        raise ConfigError(
            f"Free Spoken Digit Dataset not found at {local} (data.download=false or no cache_dir). {how}"
        )
    # GitHub archives are not byte-stable: no archive checksum, the extracted recordings are verified below
    archive = fetch(FSDD_URL, cached.parent / f"fsdd-{FSDD_COMMIT[:12]}.zip", None, local, how=f"FSDD: {how}")
    try:
        tmp = cached.with_name("recordings.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if "/recordings/" in name and name.endswith(".wav"):
                    (tmp / Path(name).name).write_bytes(zf.read(name))
    except (OSError, zipfile.BadZipFile) as e:  # a truncated archive, disk full, ...: say what to do instead
        archive.unlink(missing_ok=True)
        raise ConfigError(f"The FSDD archive {archive} could not be extracted ({e}). {how}") from e
    got = recordings_manifest_sha256(tmp)
    if got != FSDD_RECORDINGS_SHA256:
        raise ConfigError(
            f"The downloaded FSDD recordings in {tmp} have manifest sha256 {got}, expected "
            f"{FSDD_RECORDINGS_SHA256}: the download is incomplete or changed. Delete {tmp.parent} and retry. {how}"
        )
    tmp.rename(cached)
    archive.unlink(missing_ok=True)
    return cached


def find_speech_commands(data_dir: Path, cache_dir: Path | None, download: bool) -> Path:
    """The extracted Speech Commands v0.02 folder (holding ``validation_list.txt`` and one folder per word).

    Order: ``<data_dir>/speech_commands/`` extracted; ``<cache_dir>/speech_commands/speech_commands_v0.02/``;
    the archive in ``<data_dir>/speech_commands/`` or ``<cache_dir>/speech_commands/`` (verified, then
    extracted into the cache); a download into the cache when ``download``.

    Raises:
        ConfigError: nothing found and no download possible (naming URL, expected archive path and
            SHA-256), or an archive whose SHA-256 differs.
    """
    local = data_dir / "speech_commands"
    if (local / "validation_list.txt").is_file():
        return local
    cache = cache_dir / "speech_commands" if cache_dir else None
    extracted = cache / "speech_commands_v0.02" if cache else None
    if extracted is not None and (extracted / "validation_list.txt").is_file():
        return extracted
    how = (
        f"Download {SPEECH_COMMANDS_URL} (sha256 {SPEECH_COMMANDS_SHA256}, 2.3 GiB) to "
        f"{local / SPEECH_COMMANDS_ARCHIVE}, or extract it into {local}/ (so that {local}/validation_list.txt exists)."
    )
    archives = [
        p for p in (local / SPEECH_COMMANDS_ARCHIVE, cache / SPEECH_COMMANDS_ARCHIVE if cache else None) if p
    ]
    archive = next((p for p in archives if p.is_file()), None)
    if archive is not None:  # a local or earlier copy: verified, never deleted here
        verify_sha256(archive, SPEECH_COMMANDS_SHA256, f"Delete it and retry. {how}")
    elif not download or cache is None:
        raise ConfigError(f"Speech Commands v0.02 not found (data.download=false or no cache_dir). {how}")
    else:
        archive = fetch(
            SPEECH_COMMANDS_URL, cache / SPEECH_COMMANDS_ARCHIVE, SPEECH_COMMANDS_SHA256,
            local / SPEECH_COMMANDS_ARCHIVE, how=f"Speech Commands v0.02: {how}",
        )  # fmt: skip
    if extracted is None:
        raise ConfigError(f"Found {archive} but no paths.cache_dir to extract it into; set paths.cache_dir.")
    tmp = extracted.with_name("speech_commands_v0.02.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("Extracting %s to %s", archive, extracted)
    with tarfile.open(archive) as tf:
        tf.extractall(tmp, filter="data")
    tmp.rename(extracted)
    return extracted
