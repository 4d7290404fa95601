"""Optuna pruning inside a sweep's trial: report the monitored metric each validation epoch, stop a bad trial.

The sweeper (``hydra_plugins.bigmodel_optuna_sweeper``) hands the running trial to its job through
:mod:`hydra_plugins.bigmodel_optuna_sweeper.trial_context` (the basic launcher runs jobs in its own process).
Outside such a sweep the context is empty and this callback does nothing. Written here rather than taken from
``optuna-integration`` (``PyTorchLightningPruningCallback``): that adds a package for twenty lines over Optuna's
public ``Trial.report`` / ``Trial.should_prune``, and under DDP it wants every rank to hold the trial, while
here only rank 0 does (Lightning ends the other ranks when rank 0 raises).
"""

from __future__ import annotations

import math

import lightning as L


class OptunaPruning(L.Callback):
    """After each (non-sanity) validation on rank 0: ``trial.report(value, epoch)``; when the study's pruner
    says so, raise ``optuna.TrialPruned`` (``bigmodel.utils.cli`` writes ``metrics.json`` with
    ``status: pruned`` and the sweeper records the trial PRUNED).

    A missing or non-finite value is not reported (MonitorCheck and the NaN checks handle those)."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        from hydra_plugins.bigmodel_optuna_sweeper import trial_context

        running = trial_context.current()
        if running is None or running.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[running.monitor])
        if not math.isfinite(value):
            return
        epoch = trainer.current_epoch
        running.trial.report(value, epoch)
        if running.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(
                f"pruned after epoch {epoch}: {running.monitor}={value:.5g} is worse than the pruner's threshold "
                f"({type(running.trial.study.pruner).__name__})"
            )
