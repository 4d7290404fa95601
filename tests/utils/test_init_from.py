"""model.net.init_from: warm a net from another run's checkpoint."""

from __future__ import annotations

import pytest
import torch

from bigmodel.models.classification import ClassificationModule
from bigmodel.nets.gpt import GPT
from bigmodel.nets.text_encoder import TextEncoder
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.init_from import init_net_from

NET = {"_target_": "bigmodel.nets.big_mlp.BigMLP", "in_features": 64, "num_classes": 10, "hidden_sizes": [16]}
OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


def _ckpt(tmp_path, module, prefix="net."):
    path = tmp_path / "src.ckpt"
    torch.save({"state_dict": {prefix + k: v for k, v in module.state_dict().items()}, "epoch": 3}, path)
    return path


def test_classifier_net_initialised_from_a_checkpoint_and_not_saved_in_hparams(tmp_path):
    src = ClassificationModule(net=NET, optimizer=OPT, num_classes=10)
    path = _ckpt(tmp_path, src.net)
    dst = ClassificationModule(net={**NET, "init_from": str(path)}, optimizer=OPT, num_classes=10)
    assert all(
        torch.equal(a, b)
        for a, b in zip(src.net.state_dict().values(), dst.net.state_dict().values(), strict=True)
    )
    assert "init_from" not in dst.hparams.net  # its own checkpoint reloads without the other run's file
    fresh = ClassificationModule(net=NET, optimizer=OPT, num_classes=10)  # a different random init
    assert not torch.equal(next(iter(fresh.net.parameters())), next(iter(src.net.parameters())))


def test_gpt_warms_a_text_encoder_through_a_prefix_map(tmp_path):
    gpt = GPT(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=16)
    path = _ckpt(tmp_path, gpt)
    enc = TextEncoder(vocab_size=50, num_classes=2, max_length=16, n_layer=2, n_head=2, n_embd=16)
    report = init_net_from(
        enc, path, init_strict=False, init_prefix_map={"net.wte.": "wte.", "net.transformer.": "encoder."}
    )
    assert torch.equal(enc.wte.weight, gpt.wte.weight)
    g, e = gpt.transformer.state_dict(), enc.encoder.state_dict()
    assert g.keys() == e.keys() and all(torch.equal(g[k], e[k]) for k in g)
    assert "head.weight" in report["missing"] and "wpe.weight" in report["missing"]


def test_mismatched_shapes_list_the_keys(tmp_path):
    gpt = GPT(vocab_size=50, block_size=32, n_layer=1, n_head=2, n_embd=16)
    enc = TextEncoder(vocab_size=60, num_classes=2, max_length=16, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(ConfigError, match=r"wte\.weight: checkpoint \(50, 16\) vs net \(60, 16\)"):
        init_net_from(enc, _ckpt(tmp_path, gpt), False, {"net.wte.": "wte.", "net.transformer.": "encoder."})


def test_strict_lists_missing_keys_and_bad_inputs(tmp_path):
    gpt = GPT(vocab_size=50, block_size=32, n_layer=1, n_head=2, n_embd=16)
    enc = TextEncoder(vocab_size=50, num_classes=2, max_length=16, n_layer=1, n_head=2, n_embd=16)
    path = _ckpt(tmp_path, gpt)
    with pytest.raises(ConfigError, match=r"init_strict=true: missing \[.*'head.weight'"):
        init_net_from(enc, path, True, {"net.wte.": "wte.", "net.transformer.": "encoder."})
    with pytest.raises(ConfigError, match="matches no key"):
        init_net_from(enc, path, False, {"model.": ""})
    with pytest.raises(ConfigError, match="no such file"):
        init_net_from(enc, tmp_path / "missing.ckpt")
