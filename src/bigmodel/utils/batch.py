"""Global batch, micro batch and gradient accumulation, as in large-scale trainers (Megatron-LM, nanoGPT).

    global_batch_size = micro_batch_size * world_size * accumulate_grad_batches
    world_size        = trainer.devices * trainer.num_nodes

``data.micro_batch_size`` is the per-device batch of one forward/backward (``data.batch_size`` is its older
name and stays an alias). ``data.global_batch_size`` is the number of samples per optimizer step across all
devices; when set, ``trainer.accumulate_grad_batches`` is derived from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, open_dict

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlan:
    """The resolved batch sizes (samples) and accumulation (micro batches per optimizer step)."""

    micro_batch_size: int
    world_size: int
    accumulate_grad_batches: int
    global_batch_size: int


def count_devices(devices: object, accelerator: str | None) -> int:
    """Number of devices per node the Trainer will use for ``trainer.devices`` (int, list or ``auto``/-1).

    ``auto``/-1 counts CUDA devices for ``gpu``/``cuda``/``auto`` accelerators when CUDA is available, else 1
    (Lightning runs one CPU process for ``devices=auto``).

    Raises:
        ConfigError: a value that is none of those, or 0.
    """
    if isinstance(devices, (list, tuple)) or (hasattr(devices, "__len__") and not isinstance(devices, str)):
        n = len(devices)  # type: ignore[arg-type]
    elif isinstance(devices, str) and "," in devices:
        n = len([d for d in devices.split(",") if d.strip()])
    elif devices in ("auto", -1, "-1"):
        gpu = accelerator in ("gpu", "cuda", "auto", None) and torch.cuda.is_available()
        n = torch.cuda.device_count() if gpu else 1
    else:
        try:
            n = int(devices)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            n = 0
    if n < 1:
        raise ConfigError(f"trainer.devices={devices!r}: use a positive int, a list of ids, or auto.")
    return n


def plan_batches(
    micro: int, world_size: int, global_batch: int | None = None, accumulate: int = 1
) -> BatchPlan:
    """Derive the accumulation steps (or the global batch) from the others.

    Raises:
        ConfigError: a size below 1, or a ``global_batch`` that is not a multiple of ``micro * world_size``
            (no silent rounding), naming the nearest valid values.
    """
    if micro < 1 or world_size < 1 or accumulate < 1:
        raise ConfigError(
            f"data.micro_batch_size={micro}, world size={world_size} and trainer.accumulate_grad_batches="
            f"{accumulate} must all be >= 1."
        )
    if global_batch is None:
        return BatchPlan(micro, world_size, accumulate, micro * world_size * accumulate)
    per_step = micro * world_size
    if global_batch < per_step or global_batch % per_step:
        lower = max(per_step, global_batch // per_step * per_step)
        raise ConfigError(
            f"data.global_batch_size={global_batch} is not a multiple of data.micro_batch_size ({micro}) x "
            f"world size ({world_size} = trainer.devices x trainer.num_nodes) = {per_step}, so it cannot be "
            f"split into whole accumulation steps. Use data.global_batch_size={lower} or {lower + per_step}, "
            "or change data.micro_batch_size."
        )
    return BatchPlan(micro, world_size, global_batch // per_step, global_batch)


def apply_batch_plan(cfg: DictConfig) -> BatchPlan:
    """Resolve the batch keys of a composed train config in place, before the DataModule and Trainer exist:
    ``data.batch_size`` and ``data.micro_batch_size`` become the micro batch (``micro_batch_size`` wins when
    set), ``trainer.accumulate_grad_batches``
    the derived accumulation and ``data.global_batch_size`` the resulting global batch.

    Raises:
        ConfigError: a global batch that does not divide (see :func:`plan_batches`), or an explicit ``trainer.accumulate_grad_batches``
            that contradicts ``data.global_batch_size``.
    """
    data, trainer = cfg.data, cfg.trainer
    micro, alias = data.get("micro_batch_size"), data.get("batch_size")
    # micro_batch_size is the preferred name; when set it replaces batch_size (the older name, kept as is
    # so every existing config and override keeps working).
    micro = int(micro if micro is not None else alias if alias is not None else 1)
    world = count_devices(trainer.get("devices", 1), trainer.get("accelerator")) * int(
        trainer.get("num_nodes", 1) or 1
    )
    accumulate = int(trainer.get("accumulate_grad_batches", 1) or 1)
    global_batch = data.get("global_batch_size")
    plan = plan_batches(micro, world, None if global_batch is None else int(global_batch), accumulate)
    if global_batch is not None and accumulate not in (1, plan.accumulate_grad_batches):
        raise ConfigError(
            f"trainer.accumulate_grad_batches={accumulate} contradicts data.global_batch_size={global_batch}, "
            f"which gives {plan.accumulate_grad_batches}. Drop trainer.accumulate_grad_batches (it is derived)."
        )
    with open_dict(cfg):
        if "batch_size" in data or "micro_batch_size" not in data:
            data.batch_size = plan.micro_batch_size
        if "micro_batch_size" in data:
            data.micro_batch_size = plan.micro_batch_size
        if "global_batch_size" in data:
            data.global_batch_size = plan.global_batch_size
        trainer.accumulate_grad_batches = plan.accumulate_grad_batches
    log.info(
        "Batch: global %d = micro %d x world %d x accumulate %d",
        plan.global_batch_size,
        plan.micro_batch_size,
        plan.world_size,
        plan.accumulate_grad_batches,
    )
    return plan
