"""AST (Audio Spectrogram Transformer): shapes, patch grid, input checks."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.ast import AST
from bigmodel.nets.transformer import Block


def _net(**kw) -> AST:
    kw = {"num_classes": 10, "n_mels": 40, "max_frames": 128, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw}
    return AST(**kw)


@pytest.mark.parametrize("frames", [101, 57, 3])
def test_shapes_any_length_up_to_max(frames):
    net = _net().eval()
    assert net(torch.randn(2, 40, frames)).shape == (2, 10)


def test_overlapping_patches_grid_and_shared_blocks():
    net = _net(patch_size=[16, 16], patch_stride=[10, 10], max_frames=101)
    assert net.grid_f == 3 and net.pos_embed.shape[-1] == 9  # (40-16)//10+1, (101-16)//10+1
    assert sum(isinstance(m, Block) for m in net.modules()) == 2
    out = net(torch.randn(1, 1, 40, 101))
    out.sum().backward()
    assert net.pos_embed.grad is not None and net.cls_token.grad is not None


def test_bad_inputs():
    net = _net()
    with pytest.raises(ValueError, match="n_mels=40"):
        net(torch.randn(1, 64, 50))
    with pytest.raises(ValueError, match="max_frames=128"):
        net(torch.randn(1, 40, 200))
    with pytest.raises(ValueError, match="patch_size=\\[64, 64\\] is larger"):
        _net(patch_size=64)
