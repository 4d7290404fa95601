"""Issue #13, sweeps: an objective that is never logged stops the sweep after its first trial, listing the
logged names; a NaN objective fails its trial instead of ranking it."""

from __future__ import annotations

import math

import pytest

from bigmodel.utils.objective import NonFiniteObjective, ObjectiveNotLogged, objective
from tests.conftest import QUIET, run_cli


def test_objective_checks():
    m = {"val/acc": 0.5, "val/loss": math.nan, "seed": 1}
    assert objective(m, "val/acc", sweeping=True) == 0.5
    assert objective(m, "val/nope", sweeping=False) is None  # a single run just has no objective
    assert objective(m, None, sweeping=True) is None
    with pytest.raises(ObjectiveNotLogged, match="val/acc, val/loss"):
        objective(m, "val/nope", sweeping=True)
    with pytest.raises(NonFiniteObjective, match="nan"):
        objective(m, "val/loss", sweeping=True)


def test_sweep_with_an_unlogged_objective_stops_after_the_first_trial(tmp_path):
    sweep = tmp_path / "sweep"
    p = run_cli(
        "bigmodel.train", "-m", *QUIET, f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={sweep}",
        "optimized_metric=val/accuracy", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1", "test=false", "seed=1,2,3",
    )  # fmt: skip
    assert p.returncode == 2, p.stderr[-2000:]
    assert "optimized_metric=val/accuracy was never logged" in p.stderr and "val/acc" in p.stderr
    assert sorted(d.name for d in sweep.iterdir() if d.is_dir() and d.name.isdigit()) == ["0"]
