"""Folder scanning, splitting and bad-file handling shared by every modality's ``*_folder`` DataModule.

Layout: ``root/<class>/<file>``, either directly (split by ratio, stratified, seeded) or under
``root/train/``, ``root/val/`` and ``root/test/`` (``val``/``test`` optional: carved from train).
Class ids are the sorted class-folder names of the training split, so they are stable across splits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from bigmodel.data.splits import carve_missing_splits
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


class BadFileError(ConfigError):
    """A data file that cannot be read, raised under ``data.on_bad_file=error``. A user error (the file
    is named, the fix is the user's): entry points exit 2 with the message alone."""


class BadFileHandler:
    """Applies the ``data.on_bad_file`` policy: ``warn`` skips the file and names it once in the log;
    ``error`` raises :class:`BadFileError` naming it. ``summary()`` logs the count at the end of setup.

    Raises:
        ConfigError: an unknown policy.
    """

    def __init__(self, policy: str = "warn") -> None:
        if policy not in ("warn", "error"):
            raise ConfigError(f"data.on_bad_file={policy!r} is not one of: warn, error.")
        self.policy = policy
        self.skipped: dict[str, str] = {}

    def __call__(self, path: str | Path, reason: str) -> None:
        if self.policy == "error":
            raise BadFileError(
                f"Bad data file {path}: {reason}. Fix or remove the file, or set data.on_bad_file=warn to skip it."
            )
        if str(path) not in self.skipped:
            self.skipped[str(path)] = reason
            log.warning("Skipping bad data file %s: %s", path, reason)

    def summary(self, what: str = "files") -> None:
        if self.skipped:
            log.warning("Skipped %d bad %s (data.on_bad_file=warn).", len(self.skipped), what)


def list_class_files(root: Path, extensions: Iterable[str]) -> dict[str, list[Path]]:
    """Files per class folder under ``root``, sorted; files with other extensions are ignored.

    Raises:
        ConfigError: ``root`` missing or holding no class folder.
    """
    exts = {e.lower().lstrip(".") for e in extensions}
    if not root.is_dir():
        raise ConfigError(f"Data folder {root} does not exist. Point data.root (or paths.data_dir) at it.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError(f"Data folder {root} holds no class sub-folders; expected {root}/<class>/<file>.")
    return {
        c: sorted(f for f in (root / c).rglob("*") if f.is_file() and f.suffix.lower().lstrip(".") in exts)
        for c in classes
    }


def scan_folder_splits(
    root: str | Path,
    extensions: Sequence[str],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    drop_empty_classes: bool = False,
    on_bad_file: str = "warn",
) -> tuple[dict[str, tuple[list[Path], list[int]]], list[str]]:
    """Scan ``root`` into ``{split: (paths, labels)}`` for train/val/test plus the class names.

    Args:
        root: the dataset folder.
        extensions: file extensions to keep (others are ignored), e.g. ``["png", "jpg"]``.
        fractions: train/val/test fractions used when ``root`` has no ``train/`` folder, or to carve
            val/test out of ``train/`` when those folders are absent.
        seed: split seed.
        drop_empty_classes: drop an empty class folder with a warning instead of raising.
            Class ids stay those of the sorted non-empty training classes.
        on_bad_file: an empty class folder in ``val/``/``test/`` (that split then has no sample of the
            class): ``warn`` names it in the log, ``error`` raises.

    Raises:
        ConfigError: a missing folder, an empty class folder (unless dropped), fewer than two classes,
            a class in ``val/``/``test/`` that ``train/`` lacks, or (``on_bad_file=error``) an empty class
            folder in ``val/``/``test/``.
    """
    root = Path(root)
    has_split_dirs = (root / "train").is_dir()
    train_files = list_class_files(root / "train" if has_split_dirs else root, extensions)
    for cls, files in list(train_files.items()):
        if not files:
            msg = f"Class folder {root / ('train' if has_split_dirs else '') / cls} holds no {list(extensions)} files"
            if not drop_empty_classes:
                raise ConfigError(
                    f"{msg}. Add files, remove the folder, or set data.drop_empty_classes=true."
                )
            log.warning("%s; dropping class %r.", msg, cls)
            del train_files[cls]
    classes = sorted(train_files)
    if len(classes) < 2:
        raise ConfigError(
            f"Data folder {root} has {len(classes)} usable class ({classes}); classification needs at least two "
            "class sub-folders with files."
        )
    class_to_idx = {c: i for i, c in enumerate(classes)}

    def flatten(files: dict[str, list[Path]], where: Path) -> tuple[list[Path], list[int]]:
        unknown = sorted(c for c, fs in files.items() if fs and c not in class_to_idx)
        if unknown:
            raise ConfigError(
                f"{where} has class folder(s) {unknown} that the training split lacks (classes: {classes}). "
                "Add training files for them or remove them."
            )
        pairs = [(f, class_to_idx[c]) for c, fs in files.items() if c in class_to_idx for f in fs]
        return [p for p, _ in pairs], [y for _, y in pairs]

    out: dict[str, tuple[list[Path], list[int]]] = {}
    paths, labels = flatten(train_files, root)
    given = {s: root / s for s in ("val", "test") if has_split_dirs and (root / s).is_dir()}
    for s, where in given.items():
        files = list_class_files(where, extensions)
        for cls in sorted(c for c, fs in files.items() if not fs):
            msg = (
                f"Class folder {where / cls} holds no {list(extensions)} files, so {s} has no {cls!r} sample"
            )
            if on_bad_file == "error":
                raise ConfigError(f"{msg}. Add files or remove the folder (or set data.on_bad_file=warn).")
            log.warning("%s (data.on_bad_file=warn).", msg)
        out[s] = flatten(files, where)
    missing = [s for s in ("val", "test") if s not in given]
    for name, idx in carve_missing_splits(labels, missing, fractions, seed).items():
        out[name] = ([paths[i] for i in idx], [labels[i] for i in idx])
    return out, classes
