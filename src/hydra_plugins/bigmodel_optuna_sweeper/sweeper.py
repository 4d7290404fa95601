"""The sweep loop: a persistent Optuna study, asked for trials, told the outcome of each job.

- **Study**: ``optuna.create_study(load_if_exists=True)`` in ``hydra.sweeper.storage`` (default: the sqlite file
  ``<sweep dir>/optuna.db``), named ``hydra.sweeper.study_name``. ``n_trials`` is the study's total, so the same
  command with the same ``hydra.sweep.dir`` resumes: it runs only the missing trials, numbered on from the last.
- **Job folders** are named by the Optuna trial number (Hydra's ``hydra.job.num``); a folder that exists already
  is never reused (the sweep stops with an error instead).
- **A killed sweep** leaves its last trial RUNNING. On resume, a RUNNING trial of this host whose process is
  gone is closed from its job's ``metrics.json`` (COMPLETE if the job had finished, FAIL otherwise), so the
  study holds every trial exactly once. Trials of live processes (parallel workers) are left alone.
- **Failures**: see :mod:`.outcome`; failed trials are FAIL with a ``fail_reason``, and the sweep goes on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from . import outcome as oc
from . import search_space, trial_context

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")


class BigmodelOptunaSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        storage: Any,
        study_name: str,
        sampler: Any,
        pruner: Any,
        metric: str | None,
        params: Any,
    ) -> None:
        if str(direction) not in DIRECTIONS:
            raise ValueError(f"hydra.sweeper.direction={direction}: use one of {', '.join(DIRECTIONS)}")
        if int(n_trials) < 0 or int(n_jobs) < 1:
            raise ValueError(f"hydra.sweeper.n_trials={n_trials} must be >= 0 and n_jobs={n_jobs} >= 1")
        self.direction, self.n_trials, self.n_jobs = str(direction), int(n_trials), int(n_jobs)
        self.storage, self.study_name = storage, str(study_name)
        self.sampler_cfg, self.pruner_cfg, self.metric = sampler, pruner, metric
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None
        self._exhausted = False

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()

    # -- the study --------------------------------------------------------------------------------------

    def storage_url(self) -> Any:
        """The Optuna storage: a URL as given, ``journal`` -> a journal file, null -> ``<sweep dir>/optuna.db``."""
        import optuna

        if self.storage in (None, "", "sqlite"):
            return f"sqlite:///{self.sweep_dir / 'optuna.db'}"
        if self.storage == "journal":  # one append-only file: safer than sqlite on NFS (cluster workers)
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(str(self.sweep_dir / "optuna.journal")))
        return str(self.storage)

    def _study(self) -> Any:
        import optuna
        from hydra.utils import instantiate

        storage = self.storage_url()
        study = optuna.create_study(
            storage=storage, study_name=self.study_name, direction=self.direction, load_if_exists=True
        )
        if study.direction.name.lower() != self.direction:
            raise ValueError(
                f"hydra.sweeper.direction={self.direction}, but the study {self.study_name!r} in {self.sweep_dir} "
                f"was created to {study.direction.name.lower()}: keep its direction, or use a new "
                "hydra.sweeper.study_name / hydra.sweep.dir"
            )
        n_before = _n_started(study)
        sampler_cfg = OmegaConf.to_container(self.sampler_cfg) if self.sampler_cfg is not None else None
        if n_before and isinstance(sampler_cfg, dict) and sampler_cfg.get("seed") is not None:
            # a resumed sweep with the first run's seed would replay its random start-up trials
            sampler_cfg["seed"] = int(sampler_cfg["seed"]) + n_before
        sampler = instantiate(sampler_cfg) if sampler_cfg else None
        pruner = instantiate(self.pruner_cfg) if self.pruner_cfg else optuna.pruners.NopPruner()
        # the same study, with its sampler and pruner (they live in this process, not in the storage)
        study = optuna.load_study(storage=storage, study_name=self.study_name, sampler=sampler, pruner=pruner)
        where = storage if isinstance(storage, str) else self.sweep_dir / "optuna.journal"
        log.info(
            "Study %s in %s: %d trial(s) already, %s, %s",
            self.study_name, where, n_before, type(study.sampler).__name__, type(study.pruner).__name__,
        )  # fmt: skip
        return study

    def _close_stale_trials(self, study: Any) -> None:
        """Close the RUNNING trials left by a dead sweep process of this host (see the module docstring)."""
        import optuna

        host = socket.gethostname()
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            pid = t.user_attrs.get("pid")
            if (
                t.user_attrs.get("host") != host
                or not isinstance(pid, int)
                or (_alive(pid) and pid != os.getpid())
            ):
                continue
            job_dir = t.user_attrs.get("job_dir", "")
            result = oc.judge_from_metrics(oc.read_metrics(job_dir) if job_dir else None, self.metric)
            log.warning("Trial %d (%s) was left %s by a stopped sweep: %s %s",
                        t.number, job_dir, t.state.name, result.state, result.reason)  # fmt: skip
            if result.state == oc.FAIL:
                # only the process that asked for a trial holds its Trial object (and can set its
                # attributes), so the reason goes on the study; report.fail_reason reads both
                study.set_user_attr(f"fail_reason/{t.number}", result.reason)
            self._tell(study, t.number, result)

    def _tell(self, study: Any, trial: Any, result: oc.Outcome) -> None:
        import optuna

        state = optuna.trial.TrialState[result.state]
        if result.state == oc.FAIL and not isinstance(trial, int):
            trial.set_user_attr("fail_reason", result.reason[:4000])
        try:
            if state == optuna.trial.TrialState.COMPLETE:
                study.tell(trial, result.value)
            else:
                study.tell(trial, state=state)
        except RuntimeError as e:
            # GridSampler/BruteForceSampler call study.stop() once every point is tried; outside
            # study.optimize that raises, after Optuna has saved the trial's state
            if "Study.stop" not in str(e):
                raise
            self._exhausted = True

    # -- the sweep --------------------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        params = [f"{k}={v}" for k, v in _flat(self.params).items()]
        space = search_space.parse([*params, *arguments])
        self._check_subdir()
        study = self._study()
        self._close_stale_trials(study)
        todo = self.n_trials - _n_started(study)  # enqueued (WAITING) trials are still to run
        if todo <= 0:
            log.info("The study already holds %d trial(s) (n_trials=%d): raise hydra.sweeper.n_trials to run more.",
                     _n_started(study), self.n_trials)  # fmt: skip
        prune = self._pruning_possible()
        returns: list[Any] = []
        while todo > 0 and not self._exhausted:
            trials = [study.ask(space.distributions) for _ in range(min(self.n_jobs, todo))]
            for t in trials:
                job_dir = self.sweep_dir / str(t.number)
                t.set_user_attr("job_dir", str(job_dir))
                t.set_user_attr("host", socket.gethostname())
                t.set_user_attr("pid", os.getpid())
                t.set_user_attr("overrides", " ".join(space.overrides(t.params)))
                if job_dir.exists() and any(job_dir.iterdir()):
                    self._tell(study, t, oc.Outcome(oc.FAIL, reason=f"job folder {job_dir} exists already"))
                    raise FileExistsError(
                        f"Job folder {job_dir} exists already, but the study {self.study_name!r} numbers this "
                        f"trial {t.number}: another study used this sweep dir. Resume with the same "
                        "hydra.sweeper.study_name, or start a new hydra.sweep.dir."
                    )
            for run in _consecutive(trials):
                returns += self._launch(study, space, run, prune and len(run) == 1)
            todo -= len(trials)
        from . import report

        report.write(study, self.sweep_dir, self.metric)
        return returns

    def _launch(self, study: Any, space: search_space.SearchSpace, run: list[Any], prune: bool) -> list[Any]:
        told: set[int] = set()
        if prune:
            trial_context.set_current(run[0], str(self.metric))
        try:
            rets = self.launcher.launch(
                [space.overrides(t.params) for t in run], initial_job_idx=run[0].number
            )
            for t, ret in zip(run, rets, strict=True):
                returned, error = _job_result(ret)
                self._tell(
                    study, t, oc.judge(returned, error, oc.read_metrics(self.sweep_dir / str(t.number)))
                )
                told.add(t.number)
            return list(rets)
        except BaseException as e:
            # a job stopped the whole sweep (SystemExit: an objective that is never logged, SIGTERM; Ctrl-C):
            # close its trials so the study holds no RUNNING ones, then stop as asked
            for t in run:
                if t.number not in told:
                    result = oc.judge_from_metrics(oc.read_metrics(self.sweep_dir / str(t.number)), None)
                    if result.state != oc.FAIL or not result.reason:
                        result = oc.Outcome(oc.FAIL, reason=f"the sweep stopped: {type(e).__name__} {e}")
                    self._tell(study, t, result)
            raise
        finally:
            trial_context.clear()

    def _pruning_possible(self) -> bool:
        if not self.pruner_cfg:
            return False
        in_process = type(self.launcher).__name__ == "BasicLauncher"
        if not in_process or self.n_jobs != 1 or not self.metric:
            log.warning(
                "hydra.sweeper.pruner is set, but trials are pruned only with Hydra's basic launcher, n_jobs=1 "
                "and a metric (hydra.sweeper.metric / optimized_metric): pruning is off for this sweep."
            )
            return False
        return True

    def _check_subdir(self) -> None:
        assert self.config is not None
        subdir = OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir")
        if subdir != "${hydra.job.num}":
            log.warning(
                "hydra.sweep.subdir=%s: job folders are looked up as <sweep dir>/<trial number>", subdir
            )


def _n_started(study: Any) -> int:
    """Trials that ran or run: all but the enqueued ones (``study.enqueue_trial``), which ``ask`` hands out first."""
    import optuna

    return len(
        study.get_trials(
            deepcopy=False, states=tuple(s for s in optuna.trial.TrialState if s.name != "WAITING")
        )
    )


def _flat(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.optimizer.lr": ...}`` from the config as written (``model.optimizer.lr: interval(...)``) or as
    nested keys (the command line's ``hydra.sweeper.params.model.optimizer.lr=interval(...)``)."""
    if params is None:
        return {}
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params)
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _consecutive(trials: Sequence[Any]) -> list[list[Any]]:
    """Trials in runs of consecutive numbers: Hydra numbers a batch's jobs from ``initial_job_idx`` on, and the
    folder of each job must be its trial's number (another worker may have taken the numbers in between)."""
    runs: list[list[Any]] = []
    for t in sorted(trials, key=lambda t: t.number):
        if runs and runs[-1][-1].number + 1 == t.number:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _job_result(ret: Any) -> tuple[Any, BaseException | None]:
    try:
        return ret.return_value, None  # re-raises the job's exception when its status is FAILED
    except Exception as e:
        return None, e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
