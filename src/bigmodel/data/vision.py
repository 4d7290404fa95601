"""Vision DataModules: MNIST, Fashion-MNIST, CIFAR-10 and the user's own image folders.

Every dataset yields ``(x, y)`` with ``x`` a uint8 image ``(C, H, W)`` after the per-sample
``torchvision.transforms.v2`` pipeline of ``data.train_transforms`` / ``data.eval_transforms``; the
scaling to [0, 1] and the per-channel normalisation (``data.mean``/``data.std``) run once per batch on
the device (``on_after_batch_transfer``), so the loader moves 4x fewer bytes and the CPU skips a
per-sample float pass. Batches on the device: ``x`` float32 ``(B, C, H, W)``, ``y`` int64 ``(B,)``.

Sources: MNIST http://yann.lecun.com/exdb/mnist/, Fashion-MNIST
https://github.com/zalandoresearch/fashion-mnist, CIFAR-10 https://www.cs.toronto.edu/~kriz/cifar.html.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset
from torchvision.transforms import v2

from bigmodel.data.base import BaseDataModule
from bigmodel.data.images import ImageFileDataset, ImageTensorDataset, decode_all
from bigmodel.data.splits import stratified_split
from bigmodel.data.vision_sources import load_cifar10, load_idx_dataset
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "webp")


def build_transforms(specs: Sequence[Any] | None) -> Callable | None:
    """A ``v2.Compose`` from a list of transform objects or Hydra configs (``_target_`` + kwargs);
    ``None`` for an empty list (the fast path: no per-sample work)."""
    if not specs:
        return None
    out = []
    for spec in specs:
        if isinstance(spec, dict | DictConfig):
            spec = hydra.utils.instantiate(OmegaConf.create(spec) if isinstance(spec, dict) else spec)
        if not callable(spec):
            raise ConfigError(
                f"data transform {spec!r} is not callable; give `_target_: torchvision.transforms.v2.X`."
            )
        out.append(spec)
    return v2.Compose(out)


class VisionDataModule(BaseDataModule):
    """Shared settings of every vision DataModule.

    Args:
        num_classes, in_channels, image_size: the dataset's shape; nets read them through
            ``${data.num_classes}`` etc., and the DataModule checks them against the data.
        mean, std: per-channel normalisation constants (one per channel), applied per batch on the
            device after scaling to [0, 1]; ``null`` only scales.
        train_transforms, eval_transforms: per-sample ``torchvision.transforms.v2`` pipelines (lists of
            Hydra configs) on uint8 ``(C, H, W)`` tensors; keep them uint8 (normalise with mean/std).
        val_size: validation samples held out (stratified, seeded) from the official training set.
        num_workers: an int, or ``auto``: 0 without per-sample train transforms (in-memory tensors:
            workers would only add start-up and IPC time), else ``min(8, cpu_count - 1)``.
        **kwargs: loader settings, see :class:`BaseDataModule`.

    Raises:
        ConfigError: shape keys that do not match the dataset, or mean/std of the wrong length.
    """

    expected: tuple[int, int, int] | None = None  # (num_classes, in_channels, image_size) when fixed

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        image_size: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        train_transforms: Sequence[Any] | None = None,
        eval_transforms: Sequence[Any] | None = None,
        val_size: int = 5000,
        num_workers: int | str = "auto",
        **kwargs: Any,
    ) -> None:
        self.train_transform = build_transforms(train_transforms)
        self.eval_transform = build_transforms(eval_transforms)
        if num_workers == "auto":
            num_workers = 0 if self.train_transform is None else max(0, min(8, (os.cpu_count() or 1) - 1))
        super().__init__(num_workers=int(num_workers), **kwargs)
        if self.expected is not None and (num_classes, in_channels, image_size) != self.expected:
            raise ConfigError(
                f"data.num_classes={num_classes}, data.in_channels={in_channels}, data.image_size={image_size}: "
                f"{type(self).__name__} is {self.expected[0]} classes of {self.expected[1]}x{self.expected[2]}"
                f"x{self.expected[2]} images; remove these overrides."
            )
        for key, val in (("mean", mean), ("std", std)):
            if val is not None and len(val) != in_channels:
                raise ConfigError(
                    f"data.{key}={list(val)} needs one value per channel (data.in_channels={in_channels})."
                )
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size
        self.mean = torch.tensor(list(mean)).view(1, -1, 1, 1) if mean is not None else None
        self.std = torch.tensor(list(std)).view(1, -1, 1, 1) if std is not None else None
        self.val_size = val_size
        self.classes: list[str] = []

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> float32 scaled to [0, 1] and normalised with ``mean``/``std``."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if self.mean is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, torch.Tensor):  # images alone, e.g. a predict loader
            return self.normalize(batch)
        if isinstance(
            batch, dict
        ):  # semi-supervised: {"labeled": (x, y), "unlabeled": (x_weak, x_strong, y)}
            xw, xs, y = batch["unlabeled"]
            return {"labeled": self.on_after_batch_transfer(batch["labeled"], 0),
                    "unlabeled": (self.normalize(xw), self.normalize(xs), y)}  # fmt: skip
        return (self.normalize(batch[0]), *batch[1:])

    def _split_official(self, data: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Train/val from the official training set (stratified, ``seed``), test = the official test set."""
        images, labels = data["train"]
        n = len(labels)
        if not 0 < self.val_size < n:
            raise ConfigError(
                f"data.val_size={self.val_size} must be between 1 and {n - 1} (training-set size)."
            )
        train, val = stratified_split(labels.numpy(), [1 - self.val_size / n, self.val_size / n], self.seed)
        self.data_train = ImageTensorDataset(images[train], labels[train], self.train_transform)
        self.data_val = ImageTensorDataset(images[val], labels[val], self.eval_transform)
        self.data_test = ImageTensorDataset(*data["test"], self.eval_transform)
        self.apply_few_labels()
        self.check_batch_size()

    def load_unlabeled_root(self, root: Path) -> Dataset:
        """Every image under ``root`` (any depth), decoded like the labelled ones, labelled -1 (unknown)."""
        from bigmodel.data.folders import BadFileHandler
        from bigmodel.data.semi import list_unlabeled_files

        files = list_unlabeled_files(root, IMAGE_EXTENSIONS)
        images, _ = decode_all(
            files, "RGB" if self.in_channels == 3 else "L", self.image_size, BadFileHandler()
        )
        return ImageTensorDataset(images, torch.full((len(images),), -1), self.train_transform)


class MNISTDataModule(VisionDataModule):
    """MNIST: 28x28 grayscale digits, 60k train (55k/5k train/val by default) + the official 10k test.

    Args:
        local_dir: folder with the four original idx ``.gz`` files (``<data_dir>/mnist``), only read.
        cache_dir: writable folder for torchvision's extracted files.
        download: download missing files from torchvision's mirrors (needs a network).
        **kwargs: see :class:`VisionDataModule`.

    Raises:
        ConfigError: in ``setup``, files neither present nor downloadable (the message names them, their
            md5s, the folder and the URLs).
    """

    name = "mnist"
    expected = (10, 1, 28)
    class_names = [str(i) for i in range(10)]

    def __init__(self, local_dir: str, cache_dir: str, download: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("num_classes", 10)
        kwargs.setdefault("in_channels", 1)
        kwargs.setdefault("image_size", 28)
        super().__init__(**kwargs)
        self.local_dir, self.cache_dir, self.download = local_dir, cache_dir, download
        self.classes = list(self.class_names)

    def prepare_data(self) -> None:
        # Once per node: verify/extract (or download) into the cache before any rank reads it.
        self._loaded = self._load()

    def _load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return load_idx_dataset(self.name, self.local_dir, self.cache_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is None:
            self._split_official(getattr(self, "_loaded", None) or self._load())
            self._loaded = None


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: 28x28 grayscale Zalando articles, 10 classes; same layout and split as MNIST
    (``local_dir`` is ``<data_dir>/fashion-mnist``)."""

    name = "fashion_mnist"
    class_names = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]


class CIFAR10DataModule(MNISTDataModule):
    """CIFAR-10: 32x32 RGB photos, 10 classes, 50k train (45k/5k train/val by default) + 10k test.

    ``local_dir`` (``<data_dir>/cifar10``) may hold ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``;
    otherwise torchvision downloads into ``cache_dir``. Offline without the full set, train on the
    2,000-image ``cifar10-subset`` folder with ``data=image_folder`` (``experiment=image_folder_resnet``).
    """

    name = "cifar10"
    expected = (10, 3, 32)
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, local_dir: str, cache_dir: str, download: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("in_channels", 3)
        kwargs.setdefault("image_size", 32)
        super().__init__(local_dir, cache_dir, download, **kwargs)

    def _load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return load_cifar10(self.local_dir, self.cache_dir, self.download)


class ImageFolderDataModule(VisionDataModule):
    """The user's own images: ``root/<class>/*.{png,jpg,jpeg,bmp,webp}``, or
    ``root/{train,val,test}/<class>/...`` (see :func:`bigmodel.data.folders.scan_folder_splits`).

    Every image is converted to RGB (``in_channels=3``; grayscale, RGBA and palette images included) or
    to grayscale (``in_channels=1``), resized on its shorter side to ``image_size`` and centre-cropped
    square, then ``train_transforms``/``eval_transforms`` apply. Files with other extensions are ignored.

    Args:
        root: the dataset folder; never written to.
        split_fractions: train/val/test fractions when the folder has no ``train/``/``val/``/``test/``.
        extensions: image file extensions to read.
        drop_empty_classes: drop an empty class folder with a warning instead of raising.
        on_bad_file: ``warn`` skips an unreadable image with a warning naming it; ``error`` raises.
        preload: decode every image once in ``setup`` into one uint8 tensor (fast epochs; needs
            ``N*C*H*W`` bytes of memory). ``false`` decodes each image once per epoch in the loader.
        **kwargs: see :class:`VisionDataModule` (``num_classes`` must equal the class folders found).

    Raises:
        ConfigError: in ``setup``: a missing folder, fewer than two classes, an empty class folder (unless
            dropped), a class in ``val/``/``test/`` that ``train/`` lacks, or ``num_classes`` that does not match.
        BadFileError: under ``on_bad_file=error``, an unreadable image, named.
    """

    def __init__(
        self,
        root: str,
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        drop_empty_classes: bool = False,
        on_bad_file: str = "warn",
        preload: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from bigmodel.data.folders import BadFileHandler

        if self.in_channels not in (1, 3):
            raise ConfigError(
                f"data.in_channels={self.in_channels}: image folders load as 3 (RGB) or 1 (grayscale)."
            )
        self.root, self.split_fractions, self.extensions = Path(root), list(split_fractions), list(extensions)
        self.drop_empty_classes, self.preload = drop_empty_classes, preload
        self.bad_files = BadFileHandler(on_bad_file)
        self.split_files: dict[str, tuple[list[Path], list[int]]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        from bigmodel.data.folders import scan_folder_splits

        self.split_files, self.classes = scan_folder_splits(
            self.root,
            self.extensions,
            self.split_fractions,
            self.seed,
            self.drop_empty_classes,
            on_bad_file=self.bad_files.policy,
        )
        self.check_num_classes(self.classes, str(self.root))
        mode = "RGB" if self.in_channels == 3 else "L"
        datasets: dict[str, Dataset] = {}
        for split, (paths, labels) in self.split_files.items():
            transform = self.train_transform if split == "train" else self.eval_transform
            if self.preload:
                images, kept = decode_all(paths, mode, self.image_size, self.bad_files)
                datasets[split] = ImageTensorDataset(images, torch.tensor(labels)[kept], transform)
            else:
                datasets[split] = ImageFileDataset(
                    paths, labels, mode, self.image_size, self.bad_files, transform
                )
        self.data_train, self.data_val, self.data_test = datasets["train"], datasets["val"], datasets["test"]
        self.bad_files.summary("images")
        self.apply_few_labels()
        self.check_batch_size()
