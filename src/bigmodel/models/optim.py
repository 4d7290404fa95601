"""Optimizer and LR-scheduler construction from Hydra ``_partial_`` configs (plain dicts)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import hydra
import torch

# Keyword names under which common schedulers take the total number of optimizer steps.
_TOTAL_STEP_KWARGS = ("total_steps", "num_training_steps", "T_max", "total_iters")


def build_optimizer(cfg: dict[str, Any], params: Iterable) -> torch.optim.Optimizer:
    """Instantiate ``cfg`` (a ``_partial_: true`` optimizer config) on ``params``."""
    return hydra.utils.instantiate(cfg)(params=params)


def build_scheduler(
    cfg: dict[str, Any] | None, optimizer: torch.optim.Optimizer, total_steps: int, total_epochs: int
) -> dict[str, Any] | None:
    """Turn a scheduler config into Lightning's ``lr_scheduler`` dict.

    ``cfg`` holds the ``_partial_`` scheduler under ``scheduler`` plus ``interval`` (``step`` or
    ``epoch``) and ``monitor`` (for ReduceLROnPlateau). A schedule that needs the run length
    (``T_max``, ``total_steps``, ``num_training_steps``, ``total_iters``) and leaves it unset gets
    ``total_steps`` when ``interval=step``, else ``total_epochs``.
    """
    if not cfg:
        return None
    cfg = dict(cfg)
    sched_cfg = cfg.pop("scheduler")
    partial = hydra.utils.instantiate(sched_cfg)
    params = inspect.signature(partial.func).parameters
    total = total_steps if cfg.get("interval", "epoch") == "step" else total_epochs
    extra = {k: total for k in _TOTAL_STEP_KWARGS if k in params and k not in partial.keywords}
    return {"scheduler": partial(optimizer=optimizer, **extra), **cfg}


def decay_param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW parameter groups, as in GPT-2/nanoGPT: weight decay on every parameter with 2 or more
    dimensions (Linear weights, embeddings), none on biases and normalisation weights (1-D).
    Frozen parameters (``requires_grad=False``) are left out; tied weights appear once."""
    params = {id(p): p for p in module.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
