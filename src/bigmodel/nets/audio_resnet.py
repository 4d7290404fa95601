"""A small ResNet-style 2-D CNN on log-mel spectrograms (audio classification)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


class AudioResNet(nn.Module):
    """3x3 conv stem (stride ``stem_stride``, which sets most of the compute), then one residual stage (torchvision ``BasicBlock``) per entry of ``channels``,
    each after the first halving frequency and time, then global average pooling, dropout and a
    linear head (He et al. 2016, https://arxiv.org/abs/1512.03385, on log-mel "images").

    Args:
        num_classes: output logits.
        channels: channels of each stage, e.g. ``[16, 32, 64]``.
        blocks_per_stage: residual blocks in each stage.
        stem_stride: stride of the stem conv; 2 quarters the cost of everything after it.
        dropout: dropout probability before the head.

    Shapes: input ``(B, n_mels, frames)`` (or ``(B, 1, n_mels, frames)``); output ``(B, num_classes)``.
    Any number of mel bands and frames works (global pooling).
    """

    def __init__(
        self,
        num_classes: int,
        channels: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        stem_stride: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        stem = channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        prev = stem
        for i, ch in enumerate(channels):
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                down = None
                if stride != 1 or prev != ch:
                    down = nn.Sequential(
                        nn.Conv2d(prev, ch, 1, stride=stride, bias=False), nn.BatchNorm2d(ch)
                    )
                layers.append(BasicBlock(prev, ch, stride=stride, downsample=down))
                prev = ch
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(prev, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.head(self.stages(self.stem(x)))
