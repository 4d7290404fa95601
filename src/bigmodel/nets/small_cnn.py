"""A small convolutional classifier for small images (8x8 digits up to 32x32 CIFAR)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Blocks of (3x3 conv -> BatchNorm -> ReLU) x2 with 2x2 max-pool between blocks, then global
    average pooling, dropout and a linear head.

    Args:
        in_channels: input channels (1 for grayscale, 3 for RGB).
        num_classes: output logits.
        channels: output channels of each block; each block after the first halves H and W.
        dropout: dropout probability before the head.

    Shapes: input ``(B, C, H, W)``; output ``(B, num_classes)``.
    """

    def __init__(
        self, in_channels: int, num_classes: int, channels: Sequence[int] = (32, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        prev = in_channels
        for i, ch in enumerate(channels):
            if i > 0:
                blocks.append(nn.MaxPool2d(2))
            blocks += [
                nn.Conv2d(prev, ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
                nn.Conv2d(ch, ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(inplace=True),
            ]
            prev = ch
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(prev, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
