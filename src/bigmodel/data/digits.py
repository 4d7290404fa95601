"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 grayscale images in 10 classes.

Source: UCI "Optical Recognition of Handwritten Digits" test set, as shipped with scikit-learn
(https://archive.ics.uci.edu/dataset/80), so it needs no download.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import TensorDataset

from bigmodel.data.base import BaseDataModule
from bigmodel.data.splits import stratified_split
from bigmodel.utils.errors import ConfigError


class DigitsDataModule(BaseDataModule):
    """Stratified train/val/test split of the sklearn digits.

    Batches are ``(x, y)`` with ``x`` of shape ``(B, 1, 8, 8)``, float32 in [0, 1], and ``y`` of shape
    ``(B,)``, int64 class ids 0-9.

    Args:
        split_fractions: train/val/test fractions, summing to 1.
        num_classes, in_channels, image_size: must be 10, 1 and 8; nets read them through
            ``${data.num_classes}`` etc.
        **kwargs: loader settings, see :class:`BaseDataModule`.

    Raises:
        ConfigError: ``num_classes`` other than 10, or a batch size that leaves no training batch.
    """

    classes = [str(i) for i in range(10)]

    def __init__(
        self,
        split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if (num_classes, in_channels, image_size) != (10, 1, 8):
            raise ConfigError(
                f"data.num_classes={num_classes}, data.in_channels={in_channels}, data.image_size={image_size}: "
                "the digits dataset is 10 classes of 1x8x8 images; remove these overrides."
            )
        self.split_fractions = list(split_fractions)
        self.num_classes = num_classes

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        from sklearn.datasets import load_digits  # local: sklearn is only needed by this dataset

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        train, val, test = stratified_split(y.numpy(), self.split_fractions, self.seed)
        self.data_train, self.data_val, self.data_test = (
            TensorDataset(x[i], y[i]) for i in (train, val, test)
        )
        self.apply_few_labels()
        self.check_batch_size()
