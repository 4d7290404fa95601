"""Compute and memory arithmetic of transformer training (used by ``bigmodel.estimate``; the peak FLOP/s per
device live in :mod:`bigmodel.callbacks.peak_flops`, next to the MFU callback).

Sources:
- FLOPs: Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (https://arxiv.org/abs/2001.08361),
  section 2.1, and Chowdhery et al. 2022, "PaLM" (https://arxiv.org/abs/2204.02311), appendix B:
  training FLOPs per token = 6N + 12·L·T·C (N: parameters used in matmuls, L layers, T context, C width).
- Activations: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
  (https://arxiv.org/abs/2205.05198), section 4: 34·T·B·C bytes per layer with 16-bit activations and a
  fused (flash/SDPA) attention that stores no T×T matrix, 2·T·B·C with full activation checkpointing.
- Optimizer memory: Rajbhandari et al. 2020, "ZeRO" (https://arxiv.org/abs/1910.02054): mixed-precision
  Adam keeps 16-bit weights and gradients plus fp32 master weights, momentum and variance (2+2+12 bytes).
- Compute-optimal tokens: Hoffmann et al. 2022, "Chinchilla" (https://arxiv.org/abs/2203.15556): ~20 tokens
  per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigmodel.utils.errors import ConfigError

CHINCHILLA_TOKENS_PER_PARAM = 20


def flops_per_token(n_matmul_params: int, n_layer: int, seq_len: int, n_embd: int) -> float:
    """Training FLOPs per token (forward + backward) = 6·N + 12·L·T·C (Kaplan et al.; PaLM appendix B).

    ``N`` counts parameters that take part in a matmul per token (all except position embeddings; a tied
    embedding counts once, as the LM head). The attention term is for full (not causally halved) T×T scores.
    """
    return 6.0 * n_matmul_params + 12.0 * n_layer * seq_len * n_embd


@dataclass(frozen=True)
class StrategyPlan:
    """Where the training state lives. ``shard_*``: divided over the world size; ``offload_*``: in CPU memory.

    ``master_weights``: DeepSpeed's mixed precision keeps 16-bit weights and gradients on the device and an
    fp32 master copy in the optimizer state (ZeRO paper); Lightning's own mixed precision keeps fp32 weights
    and autocasts per op.
    """

    name: str
    shard_weights: bool = False
    shard_grads: bool = False
    shard_optim: bool = False
    offload_weights: bool = False
    offload_optim: bool = False
    master_weights: bool = False


def strategy_plan(strategy: object) -> StrategyPlan:
    """Classify ``trainer.strategy`` (a string such as ``ddp``/``auto``/``deepspeed_stage_3``, or a config dict
    of ``bigmodel.utils.strategies.fsdp_strategy`` / ``deepspeed_strategy``)."""
    if isinstance(strategy, dict):
        target = str(strategy.get("_target_", ""))
        if target.endswith("fsdp_strategy") or "FSDP" in target:
            mode = str(strategy.get("sharding_strategy", "FULL_SHARD")).upper()
            off = bool(strategy.get("cpu_offload", False))
            if mode == "NO_SHARD":
                return StrategyPlan("fsdp NO_SHARD")
            full = mode in ("FULL_SHARD", "HYBRID_SHARD")
            return StrategyPlan(
                f"fsdp {mode}" + (" + cpu offload" if off else ""), full, True, True, off, off
            )
        if target.endswith("deepspeed_strategy") or "DeepSpeed" in target:
            stage = int(strategy.get("stage", 2))
            ow, oo = bool(strategy.get("offload_parameters")), bool(strategy.get("offload_optimizer"))
            name = f"deepspeed stage {stage}" + (" + offload" if ow or oo else "")
            return StrategyPlan(name, stage >= 3, stage >= 2, stage >= 1, ow, oo, master_weights=True)
        return StrategyPlan(target.rsplit(".", 1)[-1] or "custom")
    s = str(strategy or "auto").lower()
    if s.startswith("deepspeed"):
        stage = 3 if "stage_3" in s else 1 if "stage_1" in s else 2
        off = "offload" in s
        return strategy_plan(
            {
                "_target_": "deepspeed_strategy",
                "stage": stage,
                "offload_optimizer": off,
                "offload_parameters": off and stage == 3,
            }
        )
    if s.startswith("fsdp"):
        return strategy_plan({"_target_": "fsdp_strategy", "cpu_offload": "offload" in s})
    return StrategyPlan(s)  # ddp, ddp_spawn, auto, single device: everything replicated


@dataclass(frozen=True)
class StateBytes:
    """Bytes of the training state: per device (GPU) and in CPU memory, both per rank."""

    weights: float
    grads: float
    optim: float
    cpu: float


def state_bytes(
    n_params: int, n_param_tensors: int, precision: str, plan: StrategyPlan, world_size: int
) -> StateBytes:
    """Weights, gradients and AdamW states under ``precision`` and ``plan``.

    AdamW (torch) keeps ``exp_avg`` and ``exp_avg_sq`` in the parameter dtype plus one fp32 ``step`` scalar
    per parameter tensor; mixed precision in Lightning keeps fp32 weights/gradients; ``bf16-true`` keeps
    everything in bf16; DeepSpeed mixed precision keeps 16-bit weights/grads and fp32 master+Adam (12 B).
    """
    p = str(precision)
    half = p.startswith(("bf16", "16"))
    if plan.master_weights and half:
        w, g, o = 2.0, 2.0, 12.0
    elif p.endswith("-true") and half:
        w, g, o = 2.0, 2.0, 4.0
    else:
        w, g, o = 4.0, 4.0, 8.0
    weights, grads = w * n_params, g * n_params
    optim = o * n_params + 4.0 * n_param_tensors
    W = max(1, world_size)
    weights /= W if plan.shard_weights else 1
    grads /= W if plan.shard_grads else 1
    optim /= W if plan.shard_optim else 1
    cpu = 0.0
    if plan.offload_weights:
        cpu += weights + grads
        weights = grads = 0.0
    if plan.offload_optim:
        cpu += optim
        optim = 0.0
    return StateBytes(weights, grads, optim, cpu)


def activation_bytes(
    n_layer: int,
    seq_len: int,
    micro_batch: int,
    n_embd: int,
    vocab_size: int,
    precision: str,
    checkpointing: bool,
) -> float:
    """Activation memory of one micro batch kept for the backward pass, in bytes (Korthikanti et al. 2022).

    Per layer 34·T·B·C bytes with 16-bit activations and fused attention (no T×T matrix kept). With
    activation checkpointing, 2·T·B·C per layer (its input) plus one layer's 34·T·B·C live while it is
    recomputed. Doubled for fp32 activations (``32-true``). Plus the fp32 logits the loss reads, 4·T·B·V.
    """
    scale = 2.0 if str(precision).startswith("32") else 1.0
    tbc = seq_len * micro_batch * n_embd * scale
    layers = (2.0 * n_layer + 34.0) * tbc if checkpointing else 34.0 * n_layer * tbc
    return layers + 4.0 * seq_len * micro_batch * vocab_size


def training_time_s(total_flops: float, n_devices: int, peak_flops: float, mfu: float) -> float:
    """Wall time in seconds for ``total_flops`` on ``n_devices`` at model FLOPs utilisation ``mfu`` (0-1)."""
    if not 0 < mfu <= 1:
        raise ConfigError(f"estimate.mfu={mfu} must be a fraction in (0, 1].")
    return total_flops / (n_devices * peak_flops * mfu)
