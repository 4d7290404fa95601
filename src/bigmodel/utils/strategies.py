"""Strategy factories for ``configs/trainer/``: FSDP and DeepSpeed built from plain config values.

Hydra cannot write a Python ``set`` of classes, which is what Lightning's FSDP policies take, so the
configs name the wrapped classes by import path and these functions import them. They also turn a
missing DeepSpeed install into a clear error before Lightning starts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from hydra.utils import get_class
from lightning.pytorch.strategies import FSDPStrategy, Strategy

from bigmodel.utils.errors import ConfigError

TRANSFORMER_BLOCK = "bigmodel.nets.transformer.Block"


def _classes(paths: Sequence[str], key: str) -> set[type]:
    out = set()
    for p in paths:
        try:
            out.add(get_class(p))
        except Exception as e:  # hydra raises ImportError/ValueError variants
            raise ConfigError(f"{key}: cannot import class {p!r} ({e}). Give a full import path.") from e
    return out


def fsdp_strategy(
    wrap_classes: Sequence[str] = (TRANSFORMER_BLOCK,),
    activation_checkpointing: bool = False,
    cpu_offload: bool = False,
    sharding_strategy: str = "FULL_SHARD",
    state_dict_type: str = "sharded",
    **kwargs,
) -> FSDPStrategy:
    """Lightning's :class:`FSDPStrategy` (PyTorch FullyShardedDataParallel).

    Args:
        wrap_classes: import paths of the module classes that become one FSDP unit each (the
            transformer block), so parameters are gathered one block at a time.
        activation_checkpointing: recompute the activations of the same classes in the backward pass
            (less memory, about one extra forward of compute).
        cpu_offload: keep parameters and gradients in CPU memory between uses.
        sharding_strategy: ``FULL_SHARD`` (ZeRO-3), ``SHARD_GRAD_OP`` (ZeRO-2), ``HYBRID_SHARD``, ``NO_SHARD``.
        state_dict_type: ``sharded`` (one file per rank in a checkpoint folder, fast for big models) or
            ``full`` (one consolidated file, gathered on rank 0).
        **kwargs: passed to :class:`FSDPStrategy`.

    Raises:
        ConfigError: a class path that does not import.
    """
    classes = _classes(wrap_classes, "trainer.strategy.wrap_classes")
    return FSDPStrategy(
        auto_wrap_policy=classes,
        activation_checkpointing_policy=set(classes) if activation_checkpointing else None,
        cpu_offload=cpu_offload,
        sharding_strategy=sharding_strategy,
        state_dict_type=state_dict_type,
        **kwargs,
    )


def deepspeed_strategy(
    stage: int = 2, offload_optimizer: bool = False, offload_parameters: bool = False, **kwargs
) -> Strategy:
    """Lightning's ``DeepSpeedStrategy`` with ZeRO ``stage`` 2 (shard optimizer states and gradients) or
    3 (also parameters), optionally offloading optimizer states / parameters to CPU memory.

    Raises:
        ConfigError: the ``deepspeed`` package is not installed (it is an optional, CUDA-only dependency),
            or ``stage`` is not 1, 2 or 3.
    """
    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "trainer.strategy is DeepSpeed, but the `deepspeed` package is not installed (it needs CUDA and "
            "is not a default dependency). Install it on the GPU machine (`pip install deepspeed`), or use "
            "trainer=fsdp, which gives the same ZeRO-2/3 sharding with PyTorch alone."
        )
    if stage not in (1, 2, 3):
        raise ConfigError(f"trainer.strategy.stage={stage}: DeepSpeed ZeRO stages are 1, 2 and 3.")
    from lightning.pytorch.strategies import DeepSpeedStrategy

    return DeepSpeedStrategy(
        stage=stage, offload_optimizer=offload_optimizer, offload_parameters=offload_parameters, **kwargs
    )


def clip_gradients(module, optimizer, clip_val: float | None, algorithm: str | None) -> None:
    """Gradient clipping that also works under FSDP, for ``LightningModule.configure_gradient_clipping``.

    Lightning's FSDP precision plugin refuses norm clipping, because ``torch.nn.utils.clip_grad_norm_``
    on shards computes a wrong (per-shard) norm; the FSDP root module's own ``clip_grad_norm_`` computes
    the global norm over all shards. Everything else goes through Lightning's ``clip_gradients``.
    """
    if not clip_val:
        return
    strategy = module.trainer.strategy
    if isinstance(strategy, FSDPStrategy) and (algorithm or "norm") == "norm":
        strategy.model.clip_grad_norm_(clip_val)
        return
    module.clip_gradients(optimizer, gradient_clip_val=clip_val, gradient_clip_algorithm=algorithm)
