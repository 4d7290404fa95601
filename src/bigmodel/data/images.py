"""Image datasets: in-memory uint8 tensors, and folder files decoded (any PIL-readable image) to uint8
``(C, H, W)`` tensors of a fixed size."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from bigmodel.data.folders import BadFileHandler

log = logging.getLogger(__name__)

# What PIL raises on a corrupt, truncated or non-image file.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_image(path: str | Path, mode: str, size: int) -> torch.Tensor:
    """Decode ``path`` to a uint8 tensor ``(C, size, size)``: converted to ``mode`` (``RGB`` or ``L``;
    grayscale, RGBA and palette images alike), resized on the shorter side and centre-cropped.

    Raises:
        OSError, ValueError, SyntaxError: an unreadable, truncated or non-image file (from PIL).
    """
    with Image.open(path) as im:
        im.load()  # decode now, so a truncated file fails here rather than later
        if im.mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")  # avoids PIL's warning on palette images with transparency
        im = im.convert(mode)
        if im.size != (size, size):
            im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
        arr = np.array(im, dtype=np.uint8)  # a writable copy
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def decode_all(
    paths: Sequence[Path], mode: str, size: int, on_bad: BadFileHandler
) -> tuple[torch.Tensor, list[int]]:
    """Decode every file once into ``(N, C, size, size)`` uint8; bad files go to ``on_bad`` (skipped
    with a warning, or raised) and are left out. Returns the images and the kept indices."""
    images, kept = [], []
    for i, p in enumerate(paths):
        try:
            images.append(load_image(p, mode, size))
        except DECODE_ERRORS as err:
            on_bad(p, f"cannot decode image ({type(err).__name__}: {err})")
            continue
        kept.append(i)
    channels = 3 if mode == "RGB" else 1
    stacked = torch.stack(images) if images else torch.empty(0, channels, size, size, dtype=torch.uint8)
    return stacked, kept


class ImageTensorDataset(Dataset):
    """In-memory uint8 images ``(N, C, H, W)`` and labels ``(N,)`` with an optional per-sample transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i]
        return (self.transform(x) if self.transform is not None else x), self.labels[i]


class ImageFileDataset(Dataset):
    """Decodes each image when it is read (once per epoch), for folders too big to hold in memory.

    A file that fails to decode goes to ``on_bad``: under ``warn`` the next readable sample is returned
    in its place; under ``error`` :class:`~bigmodel.data.folders.BadFileError` names it.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        mode: str,
        size: int,
        on_bad: BadFileHandler,
        transform: Callable | None = None,
    ) -> None:
        self.paths, self.labels = list(paths), torch.tensor(list(labels), dtype=torch.long)
        self.mode, self.size, self.on_bad, self.transform = mode, size, on_bad, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        for k in range(len(self.paths)):
            j = (i + k) % len(self.paths)
            try:
                x = load_image(self.paths[j], self.mode, self.size)
            except DECODE_ERRORS as err:
                self.on_bad(self.paths[j], f"cannot decode image ({type(err).__name__}: {err})")
                continue
            return (self.transform(x) if self.transform is not None else x), self.labels[j]
        raise RuntimeError(f"No readable image among {len(self.paths)} files (first: {self.paths[0]}).")
