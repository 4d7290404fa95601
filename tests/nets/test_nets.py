import pytest
import torch

from bigmodel.nets.big_mlp import BigMLP
from bigmodel.nets.gpt import GPT
from bigmodel.nets.small_cnn import SmallCNN
from bigmodel.nets.transformer import Block


def test_mlp_and_cnn_shapes():
    x = torch.randn(4, 1, 8, 8)
    assert BigMLP(64, 10, [32, 16])(x).shape == (4, 10)
    assert SmallCNN(1, 10)(x).shape == (4, 10)
    assert SmallCNN(3, 7, [8, 16, 32])(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    mlp = BigMLP(64, 10, [32, 16])
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 3  # fc-ReLU-fc-ReLU-fc


@pytest.mark.parametrize(
    ("n_layer", "n_head", "n_embd", "expected"),
    [(12, 12, 768, 124_439_808), (24, 16, 1024, 354_823_168)],  # GPT-2 small / medium, tied head
)
def test_gpt2_parameter_counts_on_meta(n_layer, n_head, n_embd, expected):
    with torch.device("meta"):
        net = GPT(50257, 1024, n_layer, n_head, n_embd)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_gpt_is_causal_and_generates_deterministically():
    torch.manual_seed(0)
    net = GPT(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16).eval()
    x = torch.randint(0, 11, (2, 12))
    y = x.clone()
    y[:, 8:] = (y[:, 8:] + 1) % 11
    assert torch.allclose(net(x)[:, :8], net(y)[:, :8], atol=1e-6)  # the future does not leak back
    a = net.generate(x[:, :3], 6, top_k=5, generator=torch.Generator().manual_seed(1))
    b = net.generate(x[:, :3], 6, top_k=5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 9) and torch.equal(a, b)
    with pytest.raises(ValueError, match="block_size=16"):
        net(torch.zeros(1, 17, dtype=torch.long))


def test_block_padding_mask_ignores_padded_keys():
    torch.manual_seed(0)
    block = Block(16, 2).eval()
    x = torch.randn(1, 5, 16)
    mask = torch.tensor([[True, True, True, False, False]])
    noisy = x.clone()
    noisy[:, 3:] = torch.randn(1, 2, 16) * 10
    assert torch.allclose(block(x, mask)[:, :3], block(noisy, mask)[:, :3], atol=1e-5)
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=3"):
        Block(10, 3)
