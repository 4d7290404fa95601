"""ViT from the shared transformer blocks: shapes, patch size, pooling, errors, learning."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.transformer import Block
from bigmodel.nets.vit import ViT


@pytest.mark.parametrize("patch_size, image_size, channels", [(4, 32, 3), (7, 28, 1), (2, 8, 3)])
def test_shapes_and_sequence_length(patch_size, image_size, channels):
    net = ViT(channels, 10, image_size, patch_size=patch_size, n_layer=2, n_embd=32, n_head=4)
    assert net.pos_embed.shape == (1, (image_size // patch_size) ** 2 + 1, 32)
    assert net(torch.randn(3, channels, image_size, image_size)).shape == (3, 10)
    assert sum(isinstance(m, Block) for m in net.modules()) == 2  # built from the shared blocks


def test_mean_pooling_and_cls_pooling_differ():
    torch.manual_seed(0)
    a = ViT(3, 4, 8, patch_size=4, n_layer=1, n_embd=16, n_head=2, pooling="cls")
    b = ViT(3, 4, 8, patch_size=4, n_layer=1, n_embd=16, n_head=2, pooling="mean")
    b.load_state_dict(a.state_dict())
    for net in (a, b):
        torch.nn.init.normal_(net.head.weight)
    b.head.load_state_dict(a.head.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert not torch.allclose(a(x), b(x))


def test_bad_patch_size_and_pooling():
    with pytest.raises(ValueError, match="patch_size=5 must divide image_size=32"):
        ViT(3, 10, 32, patch_size=5)
    with pytest.raises(ValueError, match="pooling='max'"):
        ViT(3, 10, 32, pooling="max")


def test_learns_a_tiny_task():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    net = ViT(1, 2, 8, patch_size=4, n_layer=1, n_embd=16, n_head=2)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.3
