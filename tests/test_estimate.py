"""bigmodel.estimate: exact parameter counts, FLOPs against published figures and the flop counter,
and state bytes against what AdamW really allocates on CPU."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.throughput import measure_flops

from bigmodel.estimate import estimate, meta_net, param_counts
from bigmodel.utils import estimate_math as em
from bigmodel.utils.errors import ConfigError
from tests.conftest import run_cli


@pytest.mark.parametrize("net, params", [("gpt2_small", 124_439_808), ("gpt2_medium", 354_823_168)])
def test_exact_parameter_counts(make_cfg, net, params):
    e = estimate(make_cfg(["model=language_model", f"net={net}"], config_name="estimate"))
    assert e["params"] == params
    assert e["matmul_params"] == params - 1024 * e["n_embd"]  # minus the position table


def test_gpt3_175b_training_flops_match_published(make_cfg):
    """Brown et al. 2020 (table D.1): 3.14e23 FLOPs for GPT-3 175B on 300B tokens."""
    e = estimate(
        make_cfg(["model=language_model", "net=gpt3_175b", "estimate.tokens=300e9"], config_name="estimate")
    )
    assert e["params"] == pytest.approx(175e9, rel=0.01)
    assert e["total_flops"] == pytest.approx(3.14e23, rel=0.05)


def test_flops_per_token_matches_torch_flop_counter(make_cfg):
    cfg = make_cfg(
        ["model=language_model", "net=gpt_nano", "model.net.vocab_size=65", "model.net.block_size=256"],
        config_name="estimate",
    )
    e = estimate(cfg)
    net = meta_net(cfg.model.net)
    B, T = 2, e["block_size"]
    idx = torch.zeros(B, T, dtype=torch.long, device="meta")
    counted = measure_flops(net, lambda: net(idx), loss_fn=lambda y: y.float().sum())
    # the counter sees matmuls and attention; it skips embedding lookups, norms and activations (<1%)
    assert counted / (B * T) == pytest.approx(e["flops_per_token"], rel=0.01)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("precision, dtype", [("32-true", torch.float32), ("bf16-true", torch.bfloat16)])
def test_state_bytes_equal_measured_adamw_on_cpu(make_cfg, precision, dtype):
    cfg = make_cfg(
        [
            "model=language_model",
            "net=gpt_nano",
            "model.net.vocab_size=65",
            "model.net.block_size=256",
            "model.net.n_layer=2",
            "model.net.n_embd=64",
            f"trainer.precision={precision}",
        ],
        config_name="estimate",
    )
    e = estimate(cfg)
    import hydra

    net = hydra.utils.instantiate(cfg.model.net).to(dtype)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randint(0, 65, (2, 16))).float().sum().backward()
    opt.step()
    params = list(net.parameters())
    assert e["weights_bytes"] == _bytes(params)
    assert e["grads_bytes"] == _bytes(p.grad for p in params)
    assert e["optim_bytes"] == _bytes(t for s in opt.state.values() for t in s.values())


def test_sharding_and_offload():
    n, k = 1_000_000, 10
    ddp = em.state_bytes(n, k, "bf16-mixed", em.strategy_plan("ddp"), 8)
    fsdp = em.state_bytes(n, k, "bf16-mixed", em.strategy_plan({"_target_": "x.fsdp_strategy"}), 8)
    zero2 = em.state_bytes(n, k, "bf16-mixed", em.strategy_plan("deepspeed_stage_2"), 8)
    off = em.state_bytes(n, k, "bf16-mixed", em.strategy_plan("deepspeed_stage_3_offload"), 8)
    assert (ddp.weights, ddp.grads, ddp.optim) == (4 * n, 4 * n, 8 * n + 4 * k)
    assert (fsdp.weights, fsdp.grads, fsdp.optim) == (4 * n / 8, 4 * n / 8, (8 * n + 4 * k) / 8)
    # ZeRO-2 with DeepSpeed's mixed precision: 2 B weights replicated, grads and 12 B optimizer sharded
    assert (zero2.weights, zero2.grads, zero2.optim) == (2 * n, 2 * n / 8, (12 * n + 4 * k) / 8)
    assert off.weights == off.grads == off.optim == 0 and off.cpu == (2 * n + 2 * n + 12 * n + 4 * k) / 8


def test_activation_checkpointing_shrinks_activations(make_cfg):
    base = estimate(
        make_cfg(["model=language_model", "net=gpt2_small", "trainer=fsdp"], config_name="estimate")
    )
    ckpt = estimate(
        make_cfg(
            [
                "model=language_model",
                "net=gpt2_small",
                "trainer=fsdp",
                "trainer.strategy.activation_checkpointing=true",
            ],
            config_name="estimate",
        )
    )
    L, tbc = 12, 1024 * 64 * 768  # layers; tokens x micro batch x width
    assert ckpt["activation_checkpointing"] and not base["activation_checkpointing"]
    assert base["activation_bytes"] - ckpt["activation_bytes"] == (34 * L - 2 * L - 34) * tbc


def test_meta_build_of_1b3_allocates_nothing():
    from hydra import compose, initialize_config_dir

    from bigmodel.utils.resolvers import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "estimate", overrides=["model=language_model", "net=gpt_1b3", "model.net.vocab_size=50257"]
        )
    net = meta_net(cfg.model.net)
    assert all(p.is_meta for p in net.parameters())
    assert 1.2e9 < param_counts(net)["params"] < 1.5e9


def test_bad_inputs_are_config_errors(make_cfg):
    with pytest.raises(ConfigError, match="needs a net: pass net=NAME"):
        estimate(make_cfg([], config_name="estimate"))
    with pytest.raises(ConfigError, match="needs a net: pass net=NAME"):  # model.net: ??? (mandatory)
        estimate(make_cfg(["model=language_model"], config_name="estimate"))
    with pytest.raises(ConfigError, match="Unknown GPU"):
        estimate(
            make_cfg(
                [
                    "model=language_model",
                    "net=gpt_nano",
                    "model.net.vocab_size=65",
                    "model.net.block_size=256",
                    "estimate.gpu=V99",
                ],
                config_name="estimate",
            )
        )
    with pytest.raises(ConfigError, match="mfu"):
        estimate(
            make_cfg(
                [
                    "model=language_model",
                    "net=gpt_nano",
                    "model.net.vocab_size=65",
                    "model.net.block_size=256",
                    "estimate.mfu=40",
                ],
                config_name="estimate",
            )
        )


def test_cli_prints_table(tmp_path):
    r = run_cli(
        "bigmodel.estimate",
        "model=language_model",
        "net=gpt2_small",
        "trainer=fsdp",
        "trainer.devices=8",
        "precision=bf16-mixed",
        f"hydra.run.dir={tmp_path}",
    )
    assert r.returncode == 0, r.stderr
    assert "124,439,808" in r.stdout and "fsdp FULL_SHARD" in r.stdout
    assert (tmp_path / "estimate.json").is_file()


def test_null_vocab_and_block_size_come_from_estimate_keys(make_cfg):
    """LM presets leave vocab_size/block_size to the data; the estimate takes them from its own keys."""
    over = [
        "model=language_model",
        "net=gpt2_small",
        "model.net.vocab_size=null",
        "model.net.block_size=null",
    ]
    with pytest.raises(ConfigError, match="estimate.seq_len"):
        estimate(make_cfg(over, config_name="estimate"))
    e = estimate(make_cfg([*over, "estimate.seq_len=1024"], config_name="estimate"))
    assert e["params"] == 124_439_808
