"""Exponential moving average of the weights, evaluated in place of the raw weights."""

from __future__ import annotations

from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` (``torch.optim.swa_utils``
    EMA, updated after every optimizer step; validation and saved ``state_dict`` use the average), with one
    change: outside fitting (``trainer.test(ckpt_path=best)`` right after ``fit``) a checkpoint's
    ``state_dict``, which holds the *averaged* weights, is kept. Lightning's callback would instead reload
    the raw weights it stored under ``current_model_state``, so the test would score the raw model.

    Args:
        decay: EMA decay per step (FixMatch: 0.999); see the parent for the other arguments.
    """

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # resuming: restore both the raw and the averaged weights
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
