"""Fail fast when a callback monitors a metric that is never logged."""

from __future__ import annotations

from lightning import Callback, LightningModule, Trainer

from bigmodel.utils.errors import ConfigError


class MonitorCheck(Callback):
    """After the sanity-check validation (before any training step), check that every ``monitor`` of
    ModelCheckpoint / EarlyStopping / LR schedulers that names a ``val/`` metric was logged.
    Without this, Lightning raises only at the end of the first epoch.

    Raises:
        ConfigError: naming the callback, the monitor key and the metric names that are logged.
    """

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logged = sorted(trainer.callback_metrics)
        for cb in trainer.callbacks:
            monitor = getattr(cb, "monitor", None)
            if monitor and monitor.startswith("val/") and monitor not in logged:
                raise ConfigError(
                    f"{type(cb).__name__} monitors {monitor!r}, which is never logged. Logged validation "
                    f"metrics: {[k for k in logged if k.startswith('val/')]}. Fix the callback's `monitor` "
                    f"(e.g. callbacks.{_config_key(cb)}.monitor=val/loss) or log {monitor!r} in the module."
                )


def _config_key(cb: Callback) -> str:
    return {"ModelCheckpoint": "model_checkpoint", "EarlyStopping": "early_stopping"}.get(
        type(cb).__name__, type(cb).__name__
    )
