"""Find torchvision's MNIST, Fashion-MNIST and CIFAR-10 files offline, or download them, without ever
writing into the (possibly read-only) data directory.

Local files are checked against torchvision's md5s, linked into ``cache_dir`` and extracted there by
torchvision itself; only when they are absent does torchvision download (users with internet).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST
from torchvision.datasets.utils import check_integrity

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

IDX_DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion_mnist": FashionMNIST}


def _link_verified(src: Path, dst: Path, md5: str) -> bool:
    """Link (or copy, where links fail) ``src`` to ``dst`` if its md5 matches; the data dir is only read."""
    if not src.is_file():
        return False
    if not check_integrity(str(src), md5):
        log.warning("Ignoring %s: its md5 is not the expected %s (a corrupt or different file).", src, md5)
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)
    return True


def _missing_error(
    what: str, files: list[tuple[str, str]], local_dir: Path, urls: list[str], err: object
) -> ConfigError:
    listing = ", ".join(f"{name} (md5 {md5})" for name, md5 in files)
    return ConfigError(
        f"{what} not found and not downloadable. Expected {listing} in {local_dir} (set paths.data_dir, or "
        f"data.local_dir for this folder alone). Download from {' or '.join(urls)} with a network and "
        f"data.download=true (files then go to paths.cache_dir), or copy the files there yourself; "
        f"../shared/data/README.md describes the layout. Cause: {err}"
    )


def load_idx_dataset(
    name: str, local_dir: str | Path, cache_dir: str | Path, download: bool
) -> dict[str, tuple]:
    """Load MNIST or Fashion-MNIST as in-memory uint8 tensors.

    Args:
        name: ``mnist`` or ``fashion_mnist``.
        local_dir: folder holding the four original idx ``.gz`` files (e.g. ``<data_dir>/mnist``); read only.
        cache_dir: writable folder for torchvision's extracted files (``<cache_dir>/<Name>/raw``).
        download: download missing files (needs a network).

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}`` with images ``(N, 1, 28, 28)`` uint8
        and labels ``(N,)`` int64.

    Raises:
        ConfigError: files neither present (with the right md5) nor downloadable.
    """
    cls = IDX_DATASETS[name]
    local_dir, root = Path(local_dir), Path(cache_dir)
    raw = root / cls.__name__ / "raw"
    for filename, md5 in cls.resources:
        if not (raw / filename[:-3]).is_file():
            _link_verified(local_dir / filename, raw / filename, md5)
    missing = [
        f
        for f, md5 in cls.resources
        if not (raw / f[:-3]).is_file() and not check_integrity(str(raw / f), md5)
    ]
    urls = [m + "<file>" for m in cls.mirrors]
    if missing and not download:
        raise _missing_error(
            cls.__name__, cls.resources, local_dir, urls, f"missing {missing}, data.download=false"
        )
    try:
        splits = {s: cls(str(root), train=s == "train", download=True) for s in ("train", "test")}
    except (RuntimeError, OSError) as err:
        raise _missing_error(cls.__name__, cls.resources, local_dir, urls, err) from err
    return {s: (d.data.unsqueeze(1).contiguous(), d.targets.long()) for s, d in splits.items()}


def load_cifar10(local_dir: str | Path, cache_dir: str | Path, download: bool) -> dict[str, tuple]:
    """Load CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html) as in-memory uint8 tensors.

    Looks for ``cifar-10-batches-py/`` (read in place) or ``cifar-10-python.tar.gz`` (extracted into
    ``cache_dir``) in ``local_dir``, then in ``cache_dir``, and downloads into ``cache_dir`` otherwise.

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}``, images ``(N, 3, 32, 32)`` uint8.

    Raises:
        ConfigError: the files are neither present nor downloadable.
    """
    local_dir, root = Path(local_dir), Path(cache_dir)
    if (local_dir / CIFAR10.base_folder).is_dir():
        root, download = local_dir, False
    elif not (root / CIFAR10.base_folder).is_dir():
        _link_verified(local_dir / CIFAR10.filename, root / CIFAR10.filename, CIFAR10.tgz_md5)
        if not download and not check_integrity(str(root / CIFAR10.filename), CIFAR10.tgz_md5):
            raise _missing_error(
                "CIFAR-10",
                [(CIFAR10.filename, CIFAR10.tgz_md5)],
                local_dir,
                [CIFAR10.url],
                "data.download=false",
            )
    try:
        splits = {s: CIFAR10(str(root), train=s == "train", download=download) for s in ("train", "test")}
    except (RuntimeError, OSError) as err:
        raise _missing_error(
            "CIFAR-10", [(CIFAR10.filename, CIFAR10.tgz_md5)], local_dir, [CIFAR10.url], err
        ) from err
    return {
        s: (torch.from_numpy(np.ascontiguousarray(d.data.transpose(0, 3, 1, 2))), torch.tensor(d.targets))
        for s, d in splits.items()
    }
