"""Shared base of the media callbacks (images, audio, generated text, confusion matrix).

A media callback observes validation (the batch and the step's ``outputs``), keeps a bounded sample, and at
the end of every ``every_n_epochs``-th validation epoch writes it to each W&B run and TensorBoard writer
among ``trainer.loggers``. Other loggers (CSV, Lightning's DummyLogger under ``fast_dev_run``) are ignored,
so under ``logger=csv`` the callbacks do nothing. Only global rank 0 collects and writes; the sanity-check
validation is skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


class MediaCallback(Callback):
    """Base class: decides when to collect and where to write.

    Subclasses implement :meth:`reset`, :meth:`collect` (per validation batch) and :meth:`emit` (once per
    selected epoch), and call :meth:`wandb_log` / :meth:`tb_writers` in ``emit``.

    Args:
        every_n_epochs: write at the 1st, (N+1)th, (2N+1)th... validation epoch (N >= 1).
        name: the config key, used in error messages (``callbacks.<name>``).

    Raises:
        ConfigError: ``every_n_epochs < 1``.
    """

    def __init__(self, every_n_epochs: int = 1, name: str = "media") -> None:
        if int(every_n_epochs) < 1:
            raise ConfigError(f"callbacks.{name}.every_n_epochs={every_n_epochs}: use an integer >= 1.")
        self.every_n_epochs = int(every_n_epochs)
        self.name = name
        self._val_epochs = 0
        self._active = False

    # --- where to write ------------------------------------------------------------------------------
    @staticmethod
    def wandb_runs(trainer: Trainer) -> list[Any]:
        return [lg.experiment for lg in trainer.loggers if isinstance(lg, WandbLogger)]

    @staticmethod
    def tb_writers(trainer: Trainer) -> list[Any]:
        return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]

    def has_backend(self, trainer: Trainer) -> bool:
        return any(isinstance(lg, WandbLogger | TensorBoardLogger) for lg in trainer.loggers)

    def wandb_log(self, trainer: Trainer, data: dict[str, Any]) -> None:
        """Log ``data`` to every W&B run at the current ``trainer/global_step`` (the x-axis Lightning uses)."""
        for run in self.wandb_runs(trainer):
            run.log({**data, "trainer/global_step": trainer.global_step})

    # --- when ----------------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._active = (
            not trainer.sanity_checking
            and trainer.is_global_zero
            and self._val_epochs % self.every_n_epochs == 0
            and self.has_backend(trainer)
        )
        if self._active:
            self.reset(trainer, pl_module)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._active:
            self.collect(trainer, pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self._active:
            self.emit(trainer, pl_module)
            self._active = False
        self._val_epochs += 1

    # --- subclass API --------------------------------------------------------------------------------
    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Clear what was collected."""

    def collect(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        """Keep (a bounded part of) one validation batch."""

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write what was collected."""

    def state_dict(self) -> dict[str, Any]:
        return {"val_epochs": self._val_epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._val_epochs = int(state_dict.get("val_epochs", 0))


# --- helpers shared by the subclasses -----------------------------------------------------------------
def class_names(trainer: Trainer, num_classes: int) -> list[str]:
    """``trainer.datamodule.classes`` when it lists ``num_classes`` names, else ``"0".."K-1"``."""
    names = getattr(getattr(trainer, "datamodule", None), "classes", None)
    if names is not None and len(names) >= num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(num_classes)]


def label(names: list[str], idx: int) -> str:
    return names[idx] if 0 <= idx < len(names) else str(idx)


def step_outputs(outputs: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(preds, target)`` from a step's returned dict, as CPU int64 tensors ``(B,)``.

    Raises:
        ConfigError: the validation step returns no ``preds`` and ``target``.
    """
    if not isinstance(outputs, dict) or "preds" not in outputs or "target" not in outputs:
        raise ConfigError(
            f"callbacks.{name} needs validation_step to return a dict with 'preds' and 'target' (like "
            f"ClassificationModule); it returned {type(outputs).__name__}. Remove callbacks.{name} for this model."
        )
    return outputs["preds"].detach().cpu().long().view(-1), outputs["target"].detach().cpu().long().view(-1)


def to_uint8_image(x: torch.Tensor, min_size_px: int = 0) -> np.ndarray:
    """A ``(C, H, W)`` or ``(H, W)`` tensor as an ``(H', W', 3)`` uint8 RGB array, min-max scaled per image
    (so normalized inputs display), using the first channel when C is not 1 or 3, and enlarged by an integer
    factor (nearest neighbour) until the short side is at least ``min_size_px`` pixels."""
    x = x.detach().float().cpu()
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.shape[0] not in (1, 3):
        x = x[:1]
    lo, hi = x.min(), x.max()
    x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    factor = max(1, -(-min_size_px // min(x.shape[-2:]))) if min_size_px else 1
    if factor > 1:
        x = x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def heatmap(values: np.ndarray) -> np.ndarray:
    """A 2-D array as an ``(H, W, 3)`` uint8 image, dark blue (low) to yellow (high), min-max scaled."""
    v = values.astype(np.float64)
    v = (v - v.min()) / (v.max() - v.min()) if v.max() > v.min() else np.zeros_like(v)
    # A 3-stop ramp (navy -> teal -> yellow): readable without matplotlib.
    stops = np.array([[20, 20, 80], [30, 150, 140], [250, 230, 40]], dtype=np.float64)
    pos = v * (len(stops) - 1)
    i = np.clip(pos.astype(int), 0, len(stops) - 2)
    frac = (pos - i)[..., None]
    return (stops[i] * (1 - frac) + stops[i + 1] * frac).round().astype(np.uint8)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (TensorBoard's text plugin renders it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows
    ]
    return "\n".join(lines)
