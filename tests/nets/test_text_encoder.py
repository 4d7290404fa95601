"""TextEncoder: a transformer encoder for classification, from scratch (shared blocks)."""

from __future__ import annotations

import pytest
import torch

from bigmodel.nets.text_encoder import TextEncoder


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_ignores_padding(pooling):
    torch.manual_seed(0)
    net = TextEncoder(vocab_size=50, num_classes=3, max_length=12, n_layer=2, n_head=2, n_embd=16,
                                pooling=pooling).eval()  # fmt: skip
    x = torch.randint(1, 50, (2, 5))
    padded = torch.cat([x, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    assert net(x).shape == (2, 3)
    torch.testing.assert_close(net(x), net(padded), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(net(torch.zeros(2, 4, dtype=torch.long))).all()  # all-padding row: no NaN


def test_encoder_too_long_input():
    net = TextEncoder(vocab_size=50, num_classes=2, max_length=4, n_layer=1, n_head=2, n_embd=8)
    with pytest.raises(ValueError, match="exceeds max_length=4"):
        net(torch.ones(1, 5, dtype=torch.long))
