"""The trial of the job running now, for the job's pruning callback (``bigmodel.callbacks.optuna_pruning``).

Hydra's basic launcher runs each job in the sweeper's own process, so the sweeper can hand the job its Optuna
trial here before the launch and take it back after. Set only when one trial is launched at a time in-process;
in any other process (a DDP rank > 0, a submitit job) it is empty and the job is simply not pruned.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class RunningTrial(NamedTuple):
    trial: Any  # optuna.Trial
    monitor: str  # the metric reported each validation epoch


_current: list[RunningTrial] = []


def set_current(trial: Any, monitor: str) -> None:
    _current[:] = [RunningTrial(trial, monitor)]


def current() -> RunningTrial | None:
    return _current[0] if _current else None


def clear() -> None:
    _current.clear()
