"""Estimate compute, memory and time of a training run before running it:
``python -m bigmodel.estimate model=language_model net=gpt2_medium trainer=fsdp trainer.devices=8
precision=bf16-mixed`` (also ``bigmodel-estimate``, ``make estimate``). It composes the same config groups as ``bigmodel.train``,
builds ``cfg.model.net`` on the meta device (exact parameter count, no memory) and prints a table; the
figures also go to ``<output_dir>/estimate.json``. Formulas and sources: :mod:`bigmodel.utils.estimate_math`;
peak FLOP/s per device: :mod:`bigmodel.callbacks.peak_flops`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from bigmodel.utils import estimate_math as em
from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_POSITION_PARAM_NAMES = ("wpe.", "pos_emb", "position_embedding")


def meta_net(net_cfg: DictConfig | dict) -> torch.nn.Module:
    """Instantiate a net config on the meta device: shapes only, no memory, no init cost."""
    import torch

    from bigmodel.models.build import instantiate_part

    with torch.device("meta"):
        return instantiate_part(net_cfg, "model.net")


def param_counts(net: torch.nn.Module) -> dict[str, int]:
    """Exact counts: ``params`` (shared/tied tensors once), ``param_tensors`` and ``matmul_params`` (all but
    position embeddings, which are looked up, not multiplied)."""
    named = list(net.named_parameters())  # deduplicates tied weights
    pos = sum(p.numel() for n, p in named if any(k in n for k in _POSITION_PARAM_NAMES))
    total = sum(p.numel() for _, p in named)
    return {"params": total, "param_tensors": len(named), "matmul_params": total - pos}


def _shape(net: torch.nn.Module, net_cfg: dict[str, Any]) -> dict[str, int] | None:
    def get(key: str, attr_fallback: Any = None) -> Any:
        return net_cfg.get(key, getattr(net, key, attr_fallback))

    wte = getattr(net, "wte", None)
    shape = {
        "n_layer": get("n_layer"),
        "n_embd": get("n_embd", getattr(wte, "embedding_dim", None)),
        "block_size": get("block_size"),
        "vocab_size": get("vocab_size", 0),
    }
    return shape if all(shape[k] for k in ("n_layer", "n_embd", "block_size")) else None


def estimate(cfg: DictConfig) -> dict[str, Any]:
    """All figures of the table as a flat dict (bytes, FLOPs, seconds).

    Raises:
        ConfigError: no ``model.net`` config, an unknown GPU, an MFU outside (0, 1], or a bad precision.
    """
    if "net" not in cfg.model or OmegaConf.is_missing(cfg.model, "net") or not cfg.model.net:
        raise ConfigError(
            "bigmodel.estimate needs a net: pass net=NAME (e.g. model=language_model net=gpt2_small) "
            "or experiment=NAME."
        )
    # imported after the checks above: a config error costs no torch import (seconds of CPU)
    from bigmodel.callbacks.peak_flops import gpu_peak_flops, precision_dtype
    from bigmodel.utils.batch import count_devices

    net_cfg = OmegaConf.to_container(cfg.model.net, resolve=True)
    est = cfg.estimate
    # LM presets may leave these to the DataModule (filled in configure_model); the estimate needs numbers
    fallback = {"vocab_size": est.get("vocab_size"), "block_size": est.get("seq_len")}
    for key, value in fallback.items():
        if key in net_cfg and net_cfg[key] is None:
            value = value or cfg.data.get(key)
            if not value:
                raise ConfigError(
                    f"model.net.{key} is null (taken from the data at train time); give it to the estimate: "
                    f"estimate.{'seq_len' if key == 'block_size' else key}=N."
                )
            net_cfg[key] = int(value)
    net = meta_net(net_cfg)
    counts = param_counts(net)
    shape = _shape(net, net_cfg)
    precision = str(cfg.trainer.precision)
    dtype = precision_dtype(precision)
    strategy = cfg.trainer.get("strategy", "auto")
    plan = em.strategy_plan(
        OmegaConf.to_container(strategy) if isinstance(strategy, DictConfig) else strategy
    )
    devices = count_devices(cfg.trainer.devices, cfg.trainer.get("accelerator"))
    world = devices * int(cfg.trainer.get("num_nodes", 1))
    ckpt = bool(est.activation_checkpointing)
    micro = int(est.micro_batch_size or cfg.data.get("micro_batch_size") or cfg.data.get("batch_size") or 1)

    out: dict[str, Any] = {
        **counts,
        "net": net_cfg.get("_target_"),
        "precision": precision,
        "strategy": plan.name,
        "world_size": world,
        "micro_batch_size": micro,
        "activation_checkpointing": ckpt,
    }
    state = em.state_bytes(counts["params"], counts["param_tensors"], precision, plan, world)
    out.update(
        weights_bytes=state.weights, grads_bytes=state.grads, optim_bytes=state.optim, cpu_bytes=state.cpu
    )
    if shape is None:  # not a transformer: parameters and state memory only
        out["device_bytes"] = state.weights + state.grads + state.optim
        return out
    seq = int(est.seq_len or shape["block_size"])
    fpt = em.flops_per_token(counts["matmul_params"], shape["n_layer"], seq, shape["n_embd"])
    tokens = float(est.tokens) if est.tokens else em.CHINCHILLA_TOKENS_PER_PARAM * counts["params"]
    peak = gpu_peak_flops(est.gpu, dtype)
    act = em.activation_bytes(
        shape["n_layer"], seq, micro, shape["n_embd"], shape["vocab_size"], precision, ckpt
    )
    total_flops = fpt * tokens
    out.update(
        **shape,
        seq_len=seq,
        flops_per_token=fpt,
        tokens=tokens,
        chinchilla_tokens=em.CHINCHILLA_TOKENS_PER_PARAM * counts["params"],
        total_flops=total_flops,
        gpu=str(est.gpu),
        peak_flops_per_device=peak,
        mfu=float(est.mfu),
        activation_bytes=act,
        device_bytes=state.weights + state.grads + state.optim + act,
        train_time_s=em.training_time_s(total_flops, world, peak, float(est.mfu)),
    )
    return out


def _gib(b: float) -> str:
    return f"{b / 2**30:,.2f} GiB"


def render(e: dict[str, Any]) -> Table:
    """The estimate as a rich table (value, unit and how it was obtained)."""
    t = Table(title=f"Training estimate: {e['net']}", show_lines=False)
    for col in ("quantity", "value", "how"):
        t.add_column(col)
    t.add_row("parameters", f"{e['params']:,}", "exact, counted on the meta-device net (tied weights once)")
    t.add_row("  in matmuls (N)", f"{e['matmul_params']:,}", "all but position embeddings")
    s = f"{e['strategy']}, {e['world_size']} device(s), {e['precision']}"
    if "flops_per_token" in e:
        t.add_row(
            "FLOPs / token",
            f"{e['flops_per_token']:.4g}",
            f"6N + 12·L·T·C, L={e['n_layer']} T={e['seq_len']} C={e['n_embd']} (Kaplan 2020; PaLM app. B)",
        )
        t.add_row(
            "compute-optimal tokens", f"{e['chinchilla_tokens']:.4g}", "20 tokens/parameter (Chinchilla)"
        )
        t.add_row("training tokens", f"{e['tokens']:.4g}", "estimate.tokens (default: compute-optimal)")
        t.add_row("training FLOPs", f"{e['total_flops']:.4g}", "FLOPs/token x tokens")
        t.add_row(
            "peak per device", f"{e['peak_flops_per_device'] / 1e12:,.1f} TFLOP/s", f"{e['gpu']}, dense"
        )
        days = e["train_time_s"] / 86400
        t.add_row(
            "training time",
            f"{e['train_time_s'] / 3600:,.1f} h ({days:,.1f} days)",
            f"at MFU {e['mfu']:.0%} on {e['world_size']} x {e['gpu']}",
        )
    t.add_row("weights / device", _gib(e["weights_bytes"]), s)
    t.add_row("gradients / device", _gib(e["grads_bytes"]), s)
    t.add_row(
        "AdamW states / device", _gib(e["optim_bytes"]), "exp_avg + exp_avg_sq (+fp32 master with DeepSpeed)"
    )
    if "activation_bytes" in e:
        how = "2·T·B·C/layer (checkpointed)" if e["activation_checkpointing"] else "34·T·B·C/layer"
        t.add_row(
            "activations / device",
            _gib(e["activation_bytes"]),
            f"micro batch {e['micro_batch_size']}; {how} + fp32 logits (Korthikanti 2022)",
        )
    t.add_row("total / device", _gib(e["device_bytes"]), "excl. CUDA context, workspace, fragmentation")
    if e["cpu_bytes"]:
        t.add_row("offloaded to CPU / rank", _gib(e["cpu_bytes"]), "")
    return t


@entry_point("estimate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: print the table, write ``estimate.json``."""
    e = estimate(cfg)
    Console(width=160).print(render(e))
    out = Path(cfg.paths.output_dir) / "estimate.json"
    out.write_text(json.dumps(e, indent=2) + "\n")
    log.info("Wrote %s", out)


if __name__ == "__main__":
    main()
