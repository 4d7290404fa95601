"""bigmodel.callbacks.optuna_pruning: reports the monitored metric to the sweeper's running trial each
validation epoch and raises optuna.TrialPruned when the pruner says so; a no-op outside a sweep."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch

from bigmodel.callbacks.optuna_pruning import OptunaPruning
from hydra_plugins.bigmodel_optuna_sweeper import trial_context


def trainer(value: float, epoch: int = 0, **kw) -> SimpleNamespace:
    return SimpleNamespace(
        sanity_checking=False, is_global_zero=True, current_epoch=epoch,
        callback_metrics={"val/acc": torch.tensor(value)}, **kw,
    )  # fmt: skip


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    done = s.ask()
    done.report(0.9, 0)
    done.report(0.9, 1)
    s.tell(done, 0.9)
    yield s
    trial_context.clear()


def test_reports_each_epoch_and_prunes_a_worse_trial(study):
    cb = OptunaPruning()
    cb.on_validation_end(trainer(0.1), None)  # no running trial: nothing happens
    good = study.ask()
    trial_context.set_current(good, "val/acc")
    cb.on_validation_end(trainer(0.95), None)
    cb.on_validation_end(trainer(0.92, epoch=1), None)
    # better than the median (MedianPruner compares the trial's best value so far): goes on
    assert study.trials[-1].intermediate_values == {0: pytest.approx(0.95), 1: pytest.approx(0.92)}
    trial_context.set_current(study.ask(), "val/acc")
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 0: val/acc=0.1"):
        cb.on_validation_end(trainer(0.1), None)


def test_sanity_check_other_ranks_and_missing_metric_are_not_reported(study):
    trial = study.ask()
    trial_context.set_current(trial, "val/acc")
    cb = OptunaPruning()
    for t in (
        SimpleNamespace(**{**vars(trainer(0.0)), "sanity_checking": True}),
        SimpleNamespace(**{**vars(trainer(0.0)), "is_global_zero": False}),
        SimpleNamespace(**{**vars(trainer(0.0)), "callback_metrics": {}}),
        trainer(float("nan")),
    ):
        cb.on_validation_end(t, None)
    assert study.trials[-1].intermediate_values == {}
