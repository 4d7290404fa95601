"""The sweeper plugin (src/hydra_plugins/bigmodel_optuna_sweeper) in process, with a fake launcher: the search
space grammar, FAIL for raising / NaN / diverged jobs, resume of a persisted study (numbering, stale RUNNING
trials, no job folder reused) and the end-of-sweep files. The real entry point: tests/test_sweep_faults.py."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from omegaconf import OmegaConf

from hydra_plugins.bigmodel_optuna_sweeper import outcome, search_space
from hydra_plugins.bigmodel_optuna_sweeper.sweeper import BigmodelOptunaSweeper

optuna.logging.set_verbosity(optuna.logging.WARNING)


class FakeLauncher:
    """Runs ``job(params, job_dir)`` per job like Hydra's basic launcher: folder ``<sweep>/<job num>``."""

    def __init__(self, sweep_dir: Path, job):
        self.sweep_dir, self.job, self.launched = sweep_dir, job, []

    def launch(self, job_overrides, initial_job_idx):
        rets = []
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            self.launched.append(num)
            job_dir = self.sweep_dir / str(num)
            job_dir.mkdir(parents=True)
            params = dict(o.split("=", 1) for o in overrides)
            rets.append(SimpleNamespace(return_value=self.job(params, job_dir)))
        return rets


def metrics(job_dir: Path, **m) -> None:
    (job_dir / "metrics.json").write_text(json.dumps({"status": "completed", **m}))


def good_job(params, job_dir):
    x = float(params["x"])
    metrics(job_dir, **{"val/acc": x, "train/loss": 1 - x})
    return x


def make_sweeper(sweep_dir: Path, job, n_trials: int, **kw) -> BigmodelOptunaSweeper:
    args = {
        "direction": "maximize",
        "n_trials": n_trials,
        "n_jobs": 1,
        "storage": None,
        "study_name": "test",
        "sampler": OmegaConf.create({"_target_": "optuna.samplers.RandomSampler", "seed": 0}),
        "pruner": None,
        "metric": "val/acc",
        "params": OmegaConf.create({"x": "interval(0, 1)"}),
        **kw,
    }
    sweeper = BigmodelOptunaSweeper(**args)
    # what setup() takes from Hydra: the config and the launcher
    sweeper.config = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(sweep_dir), "subdir": "${hydra.job.num}"}}}
    )
    sweeper.sweep_dir = sweep_dir
    sweeper.launcher = FakeLauncher(sweep_dir, job)
    return sweeper


def load(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="test", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def test_search_space_from_hydra_grammar():
    space = search_space.parse(
        [
            "a=choice(0.0, abc, 'x y', [1,2])",
            "b=tag(log, interval(1e-4, 1))",
            "c=range(1, 7, 2)",
            "d=3",
            "c=range(1, 5)",  # the command line's override of the same key wins
            "~callbacks.early_stopping",  # fixed overrides reach every job exactly as typed
            "k=${oc.env:HOME}",
        ]
    )
    d = space.distributions
    assert isinstance(d["a"], optuna.distributions.CategoricalDistribution)
    assert d["b"].log and (d["b"].low, d["b"].high) == (1e-4, 1.0)
    assert (d["c"].low, d["c"].high, d["c"].step) == (1, 4, 1)  # stop excluded, as in Python and Hydra
    fixed = ["d=3", "~callbacks.early_stopping", "k=${oc.env:HOME}"]
    assert list(space.fixed.values()) == fixed
    out = space.overrides({"a": "x y", "b": 1e-05, "c": 3})
    assert out == [*fixed, "a=x\\ y", "b=1e-05", "c=3"]  # quoted back for Hydra's grammar
    assert space.overrides({"a": "[1,2]", "b": 0.5, "c": 1})[3] == "a=[1,2]"


def test_outcomes():
    ok = {"status": "completed", "train/loss": 0.3}
    assert outcome.judge(0.9, None, ok) == outcome.Outcome("COMPLETE", 0.9)
    assert outcome.judge(math.nan, None, ok).state == "FAIL"
    assert "diverged" in outcome.judge(0.1, None, {"status": "completed", "train/loss": "nan"}).reason
    failed = {"status": "failed", "error_type": "ValueError", "error": "Invalid learning rate: -1"}
    assert outcome.judge(math.nan, None, failed).reason == "ValueError: Invalid learning rate: -1"
    assert outcome.judge(None, RuntimeError("boom"), None).reason == "RuntimeError: boom"
    assert outcome.judge(None, None, ok).state == "FAIL"  # no objective returned
    assert (
        outcome.judge(math.nan, None, {"status": "completed", "pruned": "pruned after epoch 1"}).state
        == "PRUNED"
    )
    assert outcome.judge_from_metrics(None, "val/acc").reason.startswith("interrupted")
    assert outcome.judge_from_metrics({"status": "completed", "val/acc": 0.5}, "val/acc").value == 0.5


def test_failed_and_diverged_trials_are_fail_and_never_best(tmp_path):
    def job(params, job_dir):
        n = int(job_dir.name)
        if n == 1:  # raised: bigmodel.utils.cli wrote status failed and returned NaN
            metrics(job_dir, status="failed", error_type="ValueError", error="Invalid learning rate: -1")
            return math.nan
        if n == 2:  # diverged: a high objective (it would be "best") with a NaN training loss
            metrics(job_dir, **{"val/acc": 0.99, "train/loss": "nan"})
            return 0.99
        if n == 3:
            return math.nan  # a NaN objective
        return good_job({"x": "0.5"}, job_dir)

    make_sweeper(tmp_path, job, n_trials=5).sweep([])
    study = load(tmp_path)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "FAIL", "COMPLETE"]
    assert study.best_trial.number in (0, 4) and study.best_value == 0.5
    assert study.trials[1].user_attrs["fail_reason"] == "ValueError: Invalid learning rate: -1"
    assert "train/loss=nan" in study.trials[2].user_attrs["fail_reason"]
    assert study.trials[2].user_attrs["job_dir"] == str(tmp_path / "2")

    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.best_value == 0.5 and results.best_trial in (0, 4) and "x" in results.best_params
    assert results.trials == {"COMPLETE": 2, "FAIL": 3}
    with open(tmp_path / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["state"] for r in table] == states and table[1]["fail_reason"].startswith("ValueError")
    assert (tmp_path / "trials.md").read_text().count("\n") == 2 + 5
    for png in ("optimization_history.png", "param_importances.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_resume_continues_numbering_and_closes_stale_trials(tmp_path):
    make_sweeper(tmp_path, good_job, n_trials=2).sweep([])
    first = {n: (tmp_path / n / "metrics.json").read_text() for n in ("0", "1")}
    # a sweep killed during trials 2 (its job never finished) and 3 (finished, not yet told); trial 4 runs in a
    # live process (a parallel worker) and is left alone
    study = load(tmp_path)
    for n, pid in ((2, _dead_pid()), (3, _dead_pid()), (4, os.getppid())):
        t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        assert t.number == n
        t.set_user_attr("host", os.uname().nodename)
        t.set_user_attr("pid", pid)
        t.set_user_attr("job_dir", str(tmp_path / str(n)))
    (tmp_path / "2").mkdir()
    (tmp_path / "3").mkdir()
    metrics(tmp_path / "3", **{"val/acc": 0.7, "train/loss": 0.3})

    sweeper = make_sweeper(tmp_path, good_job, n_trials=7)
    sweeper.sweep([])
    trials = load(tmp_path).trials
    assert [t.number for t in trials] == list(range(7))  # every trial exactly once, numbered on
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "RUNNING"] + [
        "COMPLETE"
    ] * 2
    assert trials[3].value == 0.7  # recovered from its metrics.json
    assert "interrupted" in load(tmp_path).user_attrs["fail_reason/2"]
    assert sweeper.launcher.launched == [5, 6]  # nothing re-run, no job folder reused
    assert {n: (tmp_path / n / "metrics.json").read_text() for n in ("0", "1")} == first
    assert "interrupted" in (tmp_path / "trials.csv").read_text()

    again = make_sweeper(tmp_path, good_job, n_trials=7)
    again.sweep([])  # the study is complete: nothing to run
    assert again.launcher.launched == [] and len(load(tmp_path).trials) == 7
    with pytest.raises(ValueError, match="was created to maximize"):
        make_sweeper(tmp_path, good_job, n_trials=8, direction="minimize").sweep([])


def test_an_existing_job_folder_is_never_reused(tmp_path):
    (tmp_path / "0").mkdir(parents=True)
    (tmp_path / "0" / "train.log").write_text("another study's job")
    sweeper = make_sweeper(tmp_path, good_job, n_trials=2)
    with pytest.raises(FileExistsError, match="exists already"):
        sweeper.sweep([])
    assert (tmp_path / "0" / "train.log").read_text() == "another study's job"
    assert sweeper.launcher.launched == []
    assert [t.state.name for t in load(tmp_path).trials] == ["FAIL"]


def test_a_job_that_stops_the_sweep_leaves_no_running_trial(tmp_path):
    def job(params, job_dir):
        metrics(job_dir, status="failed", error_type="ObjectiveNotLogged", error="optimized_metric=val/x ...")
        raise SystemExit(2)  # what bigmodel.utils.cli does for an objective that is never logged

    with pytest.raises(SystemExit):
        make_sweeper(tmp_path, job, n_trials=3).sweep([])
    (t,) = load(tmp_path).trials
    assert t.state.name == "FAIL" and t.user_attrs["fail_reason"].startswith("ObjectiveNotLogged")


def test_exhausted_grid_ends_the_sweep(tmp_path):
    sampler = OmegaConf.create({"_target_": "optuna.samplers.BruteForceSampler", "seed": 0})
    params = OmegaConf.create({"x": "choice(0.1, 0.2)"})
    sweeper = make_sweeper(tmp_path, good_job, n_trials=5, sampler=sampler, params=params)
    sweeper.sweep([])
    assert sorted(t.params["x"] for t in load(tmp_path).trials) == [0.1, 0.2]


def test_params_as_dotted_or_nested_keys():
    from hydra_plugins.bigmodel_optuna_sweeper.sweeper import _flat

    # the YAML's dotted key, then the command line's nested override of the same key (it wins in parse)
    params = OmegaConf.create(
        {"data.batch_size": "choice(32, 64)", "model": {"optimizer": {"lr": "interval(0, 1)"}}}
    )
    assert _flat(params) == {"data.batch_size": "choice(32, 64)", "model.optimizer.lr": "interval(0, 1)"}
    assert _flat(None) == {}


def test_journal_storage_under_the_sweep_dir(tmp_path):
    make_sweeper(tmp_path, good_job, n_trials=2, storage="journal").sweep([])
    make_sweeper(tmp_path, good_job, n_trials=3, storage="journal").sweep([])  # resumed from the journal
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.load_study(study_name="test", storage=storage)
    assert [(t.number, t.state.name) for t in study.trials] == [(n, "COMPLETE") for n in range(3)]
    assert not (tmp_path / "optuna.db").exists()
