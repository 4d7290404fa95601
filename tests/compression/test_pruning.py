"""Pruning: exact sparsity, post-hoc `compress method=prune`, the `callbacks=pruning` callback, bad amounts."""

from __future__ import annotations

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from torch import nn

from bigmodel.callbacks.pruning import Pruning
from bigmodel.compress import compress
from bigmodel.compression.pruning import GradualSchedule, prune, sparsity
from bigmodel.utils.errors import ConfigError
from tests.compression.conftest import _train
from tests.conftest import compose_cfg


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruned_sparsity_equals_the_requested_amount(amount, scope):
    net = _net()
    prune(net, amount, scope=scope)
    s = sparsity(net)
    n = 8 * 9 + 288 * 10
    assert s["total"] == pytest.approx(amount, abs=2 / n)
    if scope == "layer":
        assert all(v == pytest.approx(amount, abs=0.01) for v in s["layers"].values())
    assert not any(k.endswith(("_orig", "_mask")) for k in net.state_dict())  # permanent, plain keys
    assert net[1].weight.eq(1).all()  # BatchNorm left dense


def test_structured_pruning_zeroes_whole_output_channels():
    net = _net()
    prune(net, 0.5, structured=True, norm=2, dim=0)
    conv = net[0].weight.detach()
    assert int((conv.flatten(1).abs().sum(1) == 0).sum()) == 4


def test_compress_prune_writes_a_plain_checkpoint_with_the_sparsity(tmp_path, digits_mlp_ckpt):
    cfg = compose_cfg(
        tmp_path,
        [
            f"ckpt_path={digits_mlp_ckpt}",
            "method=prune",
            "amount=0.5",
            "batch_sizes=[1]",
            "min_time_s=0.01",
            f"output_path={tmp_path}/p.ckpt",
        ],
        config_name="compress",
    )
    try:
        report = compress(cfg)
    finally:
        GlobalHydra.instance().clear()
    after = report["after"]["sparsity"]
    assert after["total"] == pytest.approx(0.5, abs=1e-4) and report["before"]["sparsity"]["total"] < 0.01
    assert set(after["layers"]) == {"net.0", "net.3", "net.6"} or len(after["layers"]) == 3
    ckpt = torch.load(report["compressed_ckpt_path"], weights_only=True)
    assert not any(k.endswith(("_orig", "_mask")) for k in ckpt["state_dict"])
    assert report["after"]["test/acc"] > 0.5  # still a classifier


@pytest.mark.parametrize("amount", [1.0, -0.1, 1.5])
def test_amount_outside_0_1_is_a_config_error_naming_the_key(tmp_path, digits_mlp_ckpt, amount):
    cfg = compose_cfg(
        tmp_path, [f"ckpt_path={digits_mlp_ckpt}", "method=prune", f"amount={amount}"], "compress"
    )
    try:
        with pytest.raises(ConfigError, match=r"^amount=.*outside \[0, 1\)"):
            compress(cfg)
    finally:
        GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match=r"callbacks.pruning.amount="):
        Pruning(amount=amount, pruning_fn="l1_unstructured")
    with pytest.raises(ConfigError, match=r"callbacks.pruning.amount.final="):
        GradualSchedule(final=amount)


def test_gradual_schedule_reaches_the_final_sparsity_cumulatively():
    sched = GradualSchedule(final=0.8, start_epoch=0, end_epoch=3)
    remaining = 1.0
    for epoch in range(6):
        remaining *= 1 - sched(epoch)
        assert 1 - remaining == pytest.approx(sched.target(epoch))
    assert 1 - remaining == pytest.approx(0.8)


def test_pruning_callback_saves_plain_pruned_checkpoints(tmp_path):
    metrics = _train(
        tmp_path,
        "experiment=digits_mlp",
        "trainer.max_epochs=2",
        "+callbacks@callbacks=pruning",
        "callbacks.pruning.amount.final=0.5",
        "callbacks.pruning.amount.end_epoch=0",
        "callbacks.pruning.verbose=0",
    )
    ckpt = torch.load(metrics["last_ckpt_path"], weights_only=True)
    sd = ckpt["state_dict"]
    assert not any(k.endswith(("_orig", "_mask")) for k in sd)
    weights = [v for k, v in sd.items() if k.startswith("net.") and k.endswith("weight") and v.dim() == 2]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.5, abs=1e-3)
    assert metrics["prune/sparsity"] == pytest.approx(0.5, abs=1e-3)
