"""AudioResNet on log-mel inputs of any size."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.audio_resnet import AudioResNet


@pytest.mark.parametrize("shape", [(2, 40, 101), (3, 64, 51), (2, 1, 40, 7)])
def test_shapes(shape):
    net = AudioResNet(num_classes=7)
    assert net(torch.randn(*shape)).shape == (shape[0], 7)


def test_size_and_gradients():
    net = AudioResNet(num_classes=10, channels=[16, 32, 64])
    assert 60_000 < sum(p.numel() for p in net.parameters()) < 100_000
    net(torch.randn(2, 40, 101)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
