"""ResNet adapted for small images: shapes, torchvision-compatible layout, stem options, errors."""

from __future__ import annotations

import pytest
import torch
import torchvision

from bigmodel.nets.resnet import ResNet


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_same_parameters_as_torchvision_except_the_stem(arch):
    ours, ref = (
        ResNet(3, 10, arch).state_dict(),
        getattr(torchvision.models, arch)(num_classes=10).state_dict(),
    )
    assert set(ours) == set(ref)
    diff = [k for k in ours if ours[k].shape != ref[k].shape]
    assert diff == ["conv1.weight"] and ours["conv1.weight"].shape == (64, 3, 3, 3)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_small_input_keeps_resolution_in_the_stem(arch):
    net = ResNet(1, 7, arch, width=8)
    x = torch.randn(2, 1, 28, 28)
    stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    assert stem.shape == (2, 8, 28, 28)
    assert net(x).shape == (2, 7)


def test_imagenet_stem_downsamples_4x():
    net = ResNet(3, 5, "resnet18", width=8, small_input=False)
    x = torch.randn(1, 3, 64, 64)
    assert net.maxpool(net.relu(net.bn1(net.conv1(x)))).shape == (1, 8, 16, 16)
    assert net(x).shape == (1, 5)


def test_zero_init_residual_makes_blocks_identity_at_start():
    net = ResNet(3, 10, "resnet18", width=8).eval()
    block = net.layer1[1]
    x = torch.rand(1, 8, 8, 8)  # non-negative, so the final ReLU keeps it
    torch.testing.assert_close(block(x), x)


def test_bad_arch_and_width():
    with pytest.raises(ValueError, match="arch=.resnet7. is not one of"):
        ResNet(3, 10, "resnet7")
    with pytest.raises(ValueError, match="width=0 must be >= 1"):
        ResNet(3, 10, width=0)
