"""Exponential moving average of the weights, evaluated in place of the raw weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


def warmup_ema_avg_fn(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``avg_fn`` for ``torch.optim.swa_utils.AveragedModel``: EMA with the decay warm-up of TensorFlow's
    ``ExponentialMovingAverage(num_updates=...)``, ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates.
    Without it a run of a few thousand steps would average in its first, near-random weights (with
    ``decay=0.999`` they still weigh 37% after 1,000 steps), which scores at chance level."""

    def ema_update(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        return d * averaged + (1.0 - d) * current

    return ema_update


class EMA(WeightAveraging):
    """Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` with an exponential moving average
    (updated after every optimizer step; validation, the saved ``state_dict`` and the end of training use the
    average), as FixMatch evaluates (Sohn et al. 2020, decay 0.999).

    Two differences from Lightning's ``EMAWeightAveraging``: the decay warms up (:func:`warmup_ema_avg_fn`),
    and outside fitting (``trainer.test(ckpt_path=best)`` right after ``fit``) a checkpoint's ``state_dict``,
    which holds the *averaged* weights, is kept; Lightning's callback would reload the raw weights it stored
    under ``current_model_state``, so the test would score the raw model.

    Args:
        decay: the EMA decay per step once warmed up.
        use_buffers: also average buffers (BatchNorm running statistics).
        device: where the average lives (default: the model's device).
    """

    def __init__(self, decay: float = 0.999, use_buffers: bool = True, device: Any = None) -> None:
        super().__init__(device=device, use_buffers=use_buffers, avg_fn=warmup_ema_avg_fn(decay))

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # resuming: restore both the raw and the averaged weights
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
