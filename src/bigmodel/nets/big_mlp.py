"""The classic multi-layer perceptron "big model": fc -> ReLU -> fc -> ReLU -> fc."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BigMLP(nn.Module):
    """Flatten, then fully connected layers with ReLU (and optional dropout) between them.

    Args:
        in_features: flattened input size, e.g. 64 for ``(B, 1, 8, 8)``.
        num_classes: output logits.
        hidden_sizes: widths of the hidden layers (two gives fc->ReLU->fc->ReLU->fc).
        dropout: dropout probability after each hidden ReLU.

    Shapes: input ``(B, *)`` with ``in_features`` elements per sample; output ``(B, num_classes)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
