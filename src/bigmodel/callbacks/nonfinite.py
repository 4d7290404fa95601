"""Stop (or skip the step) at the first NaN/inf training loss instead of training on to the end."""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

POLICIES = ("error", "skip", "ignore")


class NonFiniteLossError(ConfigError):
    """The training loss became NaN or inf; the message names the step, the batch and the fix."""


class NonFiniteLoss(Callback):
    """Check the training loss of every micro-batch with ``torch.isfinite`` before its backward pass.

    Policies (``nonfinite_loss=`` in ``configs/train.yaml``):

    - ``error`` (default): raise :class:`NonFiniteLossError` at once, naming the global step, epoch,
      batch index and the positions in the batch whose inputs are themselves non-finite (a bad file).
      No later checkpoint is written, so a diverging run keeps no chance-level "best".
    - ``skip``: drop the optimizer update of that step (its gradients are set to ``None``, so the
      optimizer leaves the weights and moments alone) and warn; after ``max_consecutive_skips``
      skipped steps in a row the run is diverging and stops as under ``error``. The forward pass of the
      skipped batch has already run, so BatchNorm running statistics may hold its values: fix the data.
    - ``ignore``: no check.

    Cost: one scalar ``isfinite`` and a host sync per micro-batch (plus a 1-element all-reduce under
    DDP, so every rank stops or skips together). Lightning's progress bar already reads the loss on
    the host each step, so on the default configs this adds no new sync.

    Raises:
        ValueError: an unknown policy.
        NonFiniteLossError: under ``error`` at the first non-finite loss, under ``skip`` after
            ``max_consecutive_skips`` non-finite steps in a row.
    """

    def __init__(self, policy: str = "error", max_consecutive_skips: int = 10) -> None:
        if policy not in POLICIES:
            raise ValueError(f"nonfinite_loss={policy!r}: use one of {', '.join(POLICIES)}.")
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped = 0
        self._consecutive = 0
        self._skip_this_step = False
        self._batch: Any = None
        self._batch_idx = -1

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch, self._batch_idx = batch, batch_idx  # only to name them in the message

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        if self.policy == "ignore":
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        bad = trainer.strategy.reduce_boolean_decision(bad, all=False)  # any rank: every rank acts
        if not bad:
            return
        where = self._where(trainer, loss)
        if self.policy == "error":
            raise NonFiniteLossError(
                f"Non-finite training loss ({where}). Stopped at once so no later checkpoint is kept. "
                "Fix the data (a file with NaN/inf samples), lower model.optimizer.lr, or set "
                "trainer.gradient_clip_val=1.0; nonfinite_loss=skip drops such steps instead."
            )
        self._skip_this_step = True
        log.warning(
            "Non-finite training loss (%s): skipping this optimizer step (nonfinite_loss=skip).", where
        )

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        if not self._skip_this_step:
            self._consecutive = 0
            return
        self._skip_this_step = False
        self.skipped += 1
        self._consecutive += 1
        # fp16 AMP's GradScaler skips a step with inf/NaN gradients itself (and needs them to see it)
        if str(trainer.precision) != "16-mixed":
            optimizer.zero_grad(set_to_none=True)
        if self._consecutive >= self.max_consecutive_skips:
            raise NonFiniteLossError(
                f"{self._consecutive} optimizer steps in a row had a non-finite training loss (last at global "
                f"step {trainer.global_step}): the run is diverging. Lower model.optimizer.lr or set "
                "trainer.gradient_clip_val=1.0."
            )

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.skipped:
            log.warning("nonfinite_loss=skip: %d optimizer step(s) were skipped.", self.skipped)

    def _where(self, trainer: Trainer, loss: torch.Tensor) -> str:
        parts = [
            f"loss={loss.detach().float().item()}",
            f"global step {trainer.global_step}",
            f"epoch {trainer.current_epoch}",
            f"batch {self._batch_idx}",
        ]
        x = self._batch[0] if isinstance(self._batch, (list, tuple)) and self._batch else self._batch
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() >= 1:
            rows = (~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)).nonzero().flatten().tolist()
            if rows:
                parts.append(f"non-finite inputs at batch positions {rows[:10]}: a bad input file or sample")
        names = _strings_in(self._batch)
        if names:
            parts.append(f"batch items {names[:10]}")
        return ", ".join(parts)


def _strings_in(batch: Any) -> list[str]:
    """File paths or ids carried in the batch (a list of strings, or a dict entry ``path``/``paths``)."""
    if isinstance(batch, dict):
        batch = [batch.get("path"), batch.get("paths")]
    if isinstance(batch, (list, tuple)):
        for item in batch:
            if isinstance(item, (list, tuple)) and item and all(isinstance(s, str) for s in item):
                return list(item)
    return []
