"""Global/micro batch sizes and derived gradient accumulation (bigmodel.utils.batch)."""

from __future__ import annotations

import hydra
import pytest

from bigmodel.utils.batch import apply_batch_plan, count_devices, plan_batches
from bigmodel.utils.errors import ConfigError


def test_plan_derives_accumulation():
    plan = plan_batches(micro=8, world_size=4, global_batch=256)
    assert plan.accumulate_grad_batches == 8
    assert plan.global_batch_size == 8 * 4 * 8


def test_plan_without_global_batch_keeps_accumulation():
    plan = plan_batches(micro=16, world_size=2, global_batch=None, accumulate=3)
    assert (plan.accumulate_grad_batches, plan.global_batch_size) == (3, 96)


@pytest.mark.parametrize("global_batch", [100, 16])  # not a multiple of 32; smaller than one step
def test_plan_refuses_silent_rounding(global_batch):
    with pytest.raises(ConfigError, match="global_batch_size"):
        plan_batches(micro=8, world_size=4, global_batch=global_batch)


def test_count_devices():
    assert count_devices(4, "gpu") == 4
    assert count_devices([0, 2], "gpu") == 2
    assert count_devices("0,1,3", "gpu") == 3
    assert count_devices("auto", "cpu") == 1
    with pytest.raises(ConfigError, match="trainer.devices"):
        count_devices(0, "cpu")


def test_apply_to_config_sets_micro_batch_and_accumulation(make_cfg):
    cfg = make_cfg(
        ["trainer=ddp_cpu", "trainer.num_nodes=2", "data.micro_batch_size=16", "data.global_batch_size=256"]
    )
    plan = apply_batch_plan(cfg)
    assert plan.world_size == 4
    assert cfg.trainer.accumulate_grad_batches == 4
    assert cfg.data.batch_size == 16
    # the DataModule gets the derived micro batch; the global batch lives in the config alone
    dm = hydra.utils.instantiate(cfg.data)
    assert dm.batch_size == 16 and cfg.data.global_batch_size == 256


def test_batch_size_alias_still_works(make_cfg):
    cfg = make_cfg(["data.batch_size=32"])
    plan = apply_batch_plan(cfg)
    assert (plan.micro_batch_size, plan.global_batch_size, cfg.trainer.accumulate_grad_batches) == (32, 32, 1)


def test_contradicting_accumulation_is_an_error(make_cfg):
    cfg = make_cfg(["data.global_batch_size=256", "data.batch_size=32", "trainer.accumulate_grad_batches=2"])
    with pytest.raises(ConfigError, match="accumulate_grad_batches"):
        apply_batch_plan(cfg)


def test_bad_global_batch_stops_train_before_building(make_cfg):
    from bigmodel.train import train

    cfg = make_cfg(["data.batch_size=64", "data.global_batch_size=100"])
    with pytest.raises(ConfigError, match="not a multiple"):
        train(cfg)
