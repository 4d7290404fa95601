"""Warn or fail, before the first training step, where a step setting cannot mean what it says under
gradient accumulation. Units: ``accumulate_grad_batches``, ``limit_train_batches`` and an integer
``val_check_interval`` count training (micro-)batches; ``max_steps``, ``log_every_n_steps`` and a
scheduler's ``interval: step`` count optimizer steps (one per ``accumulate_grad_batches`` batches)."""

from __future__ import annotations

import logging
import math

from lightning import Callback, LightningModule, Trainer

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


class StepUnitsCheck(Callback):
    """Checks at ``on_train_start``, when the number of training batches per epoch is known.

    Raises:
        ConfigError: ``trainer.accumulate_grad_batches`` is larger than the training batches of one epoch
            (Lightning would silently make one optimizer step per epoch from fewer batches).
    """

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        accum = int(trainer.accumulate_grad_batches)
        batches = trainer.num_training_batches
        if accum <= 1 or not math.isfinite(batches) or batches <= 0:
            return
        batches = int(batches)
        if batches < accum:
            raise ConfigError(
                f"trainer.accumulate_grad_batches={accum}, but an epoch has only {batches} training batches: "
                f"each epoch would make a single optimizer step from {batches} batches instead of {accum}. "
                f"Use trainer.accumulate_grad_batches<={batches} (or a smaller data.global_batch_size), a "
                "smaller data.batch_size, or more training batches (trainer.limit_train_batches)."
            )
        if batches % accum:
            log.warning(
                "trainer.accumulate_grad_batches=%d does not divide the %d training batches per epoch: the last "
                "optimizer step of each epoch averages only %d batch(es).",
                accum,
                batches,
                batches % accum,
            )
        steps = math.ceil(batches / accum)
        vci = trainer.val_check_interval
        if isinstance(vci, int) and vci % accum:
            log.warning(
                "trainer.val_check_interval=%d counts training batches, not optimizer steps: with "
                "accumulate_grad_batches=%d validation runs in the middle of an accumulation window. Use a "
                "multiple of %d (every %d batches = every %d optimizer steps).",
                vci,
                accum,
                accum,
                accum * max(1, vci // accum),
                max(1, vci // accum),
            )
        if trainer.log_every_n_steps > steps:
            log.warning(
                "trainer.log_every_n_steps=%d counts optimizer steps, and an epoch has only %d (%d batches / "
                "accumulate_grad_batches=%d): step metrics such as train/loss are logged less than once an epoch.",
                trainer.log_every_n_steps,
                steps,
                batches,
                accum,
            )
