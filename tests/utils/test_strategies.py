"""Scale-out trainer configs compose on CPU and build the intended strategy objects (GPU runs: `gpu` marker)."""

from __future__ import annotations

import importlib.util

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from bigmodel.nets.transformer import Block
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.strategies import deepspeed_strategy, fsdp_strategy

HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None


def _wrapped_classes(policy) -> set:
    assert isinstance(policy, ModuleWrapPolicy)
    return set(policy._module_classes)


@pytest.mark.parametrize("ckpt", [False, True])
def test_fsdp_config_wraps_and_checkpoints_transformer_blocks(make_cfg, ckpt):
    cfg = make_cfg(["trainer=fsdp", f"trainer.strategy.activation_checkpointing={ckpt}"])
    assert cfg.trainer.strategy.sharding_strategy == "FULL_SHARD"
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert _wrapped_classes(strategy.kwargs["auto_wrap_policy"]) == {Block}
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    assert strategy._state_dict_type == "sharded"
    ac = strategy._activation_checkpointing_kwargs
    if ckpt:
        assert _wrapped_classes(ac["auto_wrap_policy"]) == {Block}
    else:
        assert ac == {}


def test_fsdp_cpu_offload_switch(make_cfg):
    cfg = make_cfg(["trainer=fsdp", "trainer.strategy.cpu_offload=true"])
    assert hydra.utils.instantiate(cfg.trainer.strategy).cpu_offload.offload_params is True


def test_fsdp_bad_class_path_names_the_key():
    with pytest.raises(ConfigError, match="wrap_classes"):
        fsdp_strategy(wrap_classes=["bigmodel.nets.nope.Block"])


@pytest.mark.parametrize(
    "name, stage, offload",
    [
        ("deepspeed_stage_2", 2, False),
        ("deepspeed_stage_3", 3, False),
        ("deepspeed_stage_3_offload", 3, True),
    ],
)
def test_deepspeed_configs_compose(make_cfg, name, stage, offload):
    cfg = make_cfg([f"trainer={name}"])
    s = cfg.trainer.strategy
    assert s._target_ == "bigmodel.utils.strategies.deepspeed_strategy"
    assert (s.stage, s.offload_optimizer, s.offload_parameters) == (stage, offload, offload)
    assert cfg.trainer.plugins is None and cfg.trainer.precision == "bf16-mixed"


@pytest.mark.skipif(HAS_DEEPSPEED, reason="deepspeed is installed")
def test_deepspeed_missing_package_is_a_clear_error(make_cfg):
    with pytest.raises(ConfigError, match="pip install deepspeed"):
        deepspeed_strategy(stage=3)
    cfg = make_cfg(["trainer=deepspeed_stage_2"])
    with pytest.raises(InstantiationException, match="deepspeed"):
        hydra.utils.instantiate(cfg.trainer)


@pytest.mark.parametrize("preset", ["32-true", "16-mixed", "bf16-mixed", "bf16-true"])
def test_precision_presets(make_cfg, preset):
    cfg = make_cfg([f"precision={preset}", "trainer=cpu"])
    assert cfg.trainer.precision == preset
    if preset in ("32-true", "bf16-mixed", "bf16-true"):  # 16-mixed needs a GPU
        trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.precision == preset


def test_multi_node_and_slurm_launcher(make_cfg):
    cfg = make_cfg(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
    assert cfg.trainer.num_nodes == 2


def test_gradient_clipping_is_applied(make_cfg):
    """gradient_clip_val reaches the Trainer and the module's hook clips the global norm."""
    from bigmodel.train import train

    cfg = make_cfg(["trainer=cpu", "trainer.gradient_clip_val=0.5", "debug=fdr", "net=big_mlp"])
    cfg_trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    assert cfg_trainer.gradient_clip_val == 0.5
    module = hydra.utils.instantiate(cfg.model, _recursive_=False)
    for p in module.parameters():
        p.grad = torch.full_like(p, 10.0)
    module.trainer = cfg_trainer
    cfg_trainer.strategy.connect(module)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    module.configure_gradient_clipping(opt, 0.5, "norm")
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))
    assert norm == pytest.approx(0.5, rel=1e-3)
    assert train(cfg)["global_step"] == 1  # and a real run with clipping works


_GPU_RUN = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "net=big_mlp",
    "callbacks.throughput.window_size=2",
    "trainer.log_every_n_steps=1",
]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fsdp_on_gpu_with_clipping_and_mfu(make_cfg):
    """Unverified on CPU-only machines: FSDP (bf16-mixed, sharded checkpoint, norm clipping through FSDP's
    clip_grad_norm_) trains, tests its best checkpoint and logs an MFU from the GPU table."""
    from bigmodel.train import train

    n = min(torch.cuda.device_count(), 2)
    cfg = make_cfg(["trainer=fsdp", f"trainer.devices={n}", "trainer.gradient_clip_val=1.0", *_GPU_RUN])
    m = train(cfg)
    assert m["global_step"] >= 1 and 0 <= float(m["test/acc"]) <= 1
    assert 0 < m["perf/mfu"] < 1


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and HAS_DEEPSPEED), reason="needs a GPU and deepspeed")
def test_deepspeed_stage_2_on_gpu(make_cfg):
    from bigmodel.train import train

    cfg = make_cfg(["trainer=deepspeed_stage_2", "trainer.devices=1", *_GPU_RUN])
    assert train(cfg)["global_step"] >= 1


def test_fsdp_empty_init_builds_1b3_on_meta(make_cfg):
    """What Lightning wraps around configure_model under trainer=fsdp: the 1.3B net allocates nothing."""
    cfg = make_cfg(
        ["~experiment", "trainer=fsdp", "model=language_model", "net=gpt_1b3", "model.net.vocab_size=50257"]
    )
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    with strategy.tensor_init_context(empty_init=True):
        net = hydra.utils.instantiate(cfg.model.net)
    params = list(net.parameters())
    assert all(p.is_meta for p in params)
    assert sum(p.numel() for p in params) == 1_315_723_264
