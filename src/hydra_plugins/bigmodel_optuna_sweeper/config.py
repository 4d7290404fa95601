"""The ``hydra.sweeper`` node of ``hydra/sweeper=bigmodel_optuna`` (see the README, "Sweeps")."""

# no `from __future__ import annotations`: Hydra runs plugin modules outside sys.modules while scanning, and
# a dataclass with string annotations then fails to build (which would break every Hydra command)
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class BigmodelOptunaSweeperConf:
    _target_: str = "hydra_plugins.bigmodel_optuna_sweeper.sweeper.BigmodelOptunaSweeper"
    # sampler/pruner stay configs until the sweep starts: a resumed sweep re-seeds the sampler (seed + number
    # of trials already in the study) so it does not replay the first run's random start-up trials
    _recursive_: bool = False
    # maximize | minimize (one objective: the job's return value, ``optimized_metric``)
    direction: str = "minimize"
    # total number of trials in the study; a resumed sweep runs only the missing ones
    n_trials: int = 20
    # trials asked and launched together (a parallel launcher runs them at once)
    n_jobs: int = 1
    # an Optuna storage URL, ``journal`` (a JournalFileBackend file under the sweep dir), or null: an sqlite
    # file ``<sweep dir>/optuna.db``. Re-running with the same hydra.sweep.dir and study_name resumes.
    storage: Any = None
    study_name: str = "sweep"
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    # null: no pruning; e.g. {_target_: optuna.pruners.MedianPruner, n_startup_trials: 5, n_warmup_steps: 1}
    pruner: Any = None
    # the metric the job reports each validation epoch for pruning, and reads back from a job's
    # metrics.json when a killed sweep is resumed
    metric: Any = "${oc.select:optimized_metric,null}"
    # key: sweep (Hydra's override grammar), e.g. model.optimizer.lr: tag(log, interval(1e-4, 1e-2))
    params: Any = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="bigmodel_optuna", node=BigmodelOptunaSweeperConf, provider="bigmodel"
)
