"""Fail fast when a callback or LR scheduler monitors a metric that is never logged, or that is not
there when the scheduler needs it."""

from __future__ import annotations

from collections.abc import Iterator

from lightning import Callback, LightningModule, Trainer

from bigmodel.utils.errors import ConfigError


class MonitorCheck(Callback):
    """Checks every ``monitor`` of the callbacks (ModelCheckpoint, EarlyStopping, ...) and of the LR
    schedulers (ReduceLROnPlateau), whatever its name:

    - before training (``on_fit_start``): a plateau scheduler on a validation metric must be stepped only
      when validation has run: ``interval: epoch`` with a ``frequency`` that is a multiple of
      ``trainer.check_val_every_n_epoch``, or ``interval: step`` with ``frequency x
      accumulate_grad_batches`` a multiple of an integer ``val_check_interval`` (validation by steps).
      Lightning otherwise dies at the end of the first epoch without validation;
    - after the sanity-check validation (before any training step): every monitor that is not a
      ``train/`` metric must have been logged;
    - at the first real validation end (before EarlyStopping/ModelCheckpoint use them): every monitor,
      ``train/`` ones included, and the validation ones too when the sanity check was off
      (``trainer.num_sanity_val_steps=0``).

    Put it first in the callback list so its message comes before Lightning's.

    Raises:
        ConfigError: naming the callback or scheduler, the monitor key, the logged names and the fix.
    """

    def __init__(self) -> None:
        self._checked_all = False

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for sched in trainer.lr_scheduler_configs:
            if sched.reduce_on_plateau and sched.monitor and not sched.monitor.startswith("train/"):
                _check_plateau_schedule(trainer, sched.monitor, sched.interval, int(sched.frequency))

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer, include_train=False)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self._checked_all:
            return
        self._check(trainer, include_train=True)
        self._checked_all = True

    def _check(self, trainer: Trainer, include_train: bool) -> None:
        logged = sorted(trainer.callback_metrics)
        for owner, key, monitor in _monitors(trainer):
            if monitor in logged or (monitor.startswith("train/") and not include_train):
                continue
            # Lightning's ModelCheckpoint also offers the trainer's own counters as monitors (documented:
            # e.g. monitor="step", mode="max" keeps the newest), though no module logs them.
            if owner == "ModelCheckpoint" and monitor in ("epoch", "step"):
                continue
            stage = monitor.split("/")[0] if "/" in monitor else "val"
            shown = [k for k in logged if k.startswith(f"{stage}/")] or logged
            raise ConfigError(
                f"{owner} monitors {monitor!r}, which is never logged. Logged metrics: {shown}. Fix "
                f"{key} (e.g. {key}=val/loss) or log {monitor!r} in the module."
            )


def _monitors(trainer: Trainer) -> Iterator[tuple[str, str, str]]:
    """(who, config key to fix, monitored name) for every callback and LR scheduler with a monitor."""
    for cb in trainer.callbacks:
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str) and monitor:
            yield type(cb).__name__, f"callbacks.{_config_key(cb)}.monitor", monitor
    for sched in trainer.lr_scheduler_configs:
        if sched.reduce_on_plateau and sched.monitor:
            yield type(sched.scheduler).__name__, "model.scheduler.monitor", sched.monitor


def _check_plateau_schedule(trainer: Trainer, monitor: str, interval: str, frequency: int) -> None:
    every_epochs = trainer.check_val_every_n_epoch
    vci = trainer.val_check_interval
    accum = int(trainer.accumulate_grad_batches)
    if interval == "epoch" and every_epochs is not None and frequency % every_epochs == 0:
        return
    if (
        interval == "step"
        and every_epochs is None
        and isinstance(vci, int)
        and (frequency * accum) % vci == 0
    ):
        return
    if interval == "epoch" and every_epochs is not None:
        fix = f"set model.scheduler.frequency={every_epochs} (a multiple of trainer.check_val_every_n_epoch)"
    elif interval == "epoch":
        fix = "validate every epoch (trainer.check_val_every_n_epoch=1), or use model.scheduler.interval=step"
    else:
        fix = (
            "use model.scheduler.interval=epoch, or validate by steps (trainer.check_val_every_n_epoch=null, "
            "trainer.val_check_interval=N batches) with model.scheduler.frequency x accumulate_grad_batches "
            "a multiple of N"
        )
    raise ConfigError(
        f"The LR scheduler (ReduceLROnPlateau) monitors {monitor!r} and steps every {frequency} {interval}(s), "
        f"but validation runs every {every_epochs} epoch(s) (trainer.check_val_every_n_epoch) / every {vci} "
        f"(trainer.val_check_interval), so {monitor!r} is missing when it steps: {fix}."
    )


def _config_key(cb: Callback) -> str:
    return {"ModelCheckpoint": "model_checkpoint", "EarlyStopping": "early_stopping"}.get(
        type(cb).__name__, type(cb).__name__
    )
