"""What a finished job means for its Optuna trial: COMPLETE with a value, FAIL with a reason, or PRUNED.

A job reports through two channels: its return value (the objective, ``optimized_metric``) and its
``metrics.json`` (``status``: ``completed``, with ``pruned`` for a pruned trial | ``failed`` with ``error_type``/``error`` |
``interrupted``; CONVENTIONS.md). A trial is COMPLETE only when both agree that it finished and the objective
and the training loss are finite, so a diverged run (NaN loss, chance accuracy) is never ranked, let alone best.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

COMPLETE, FAIL, PRUNED = "COMPLETE", "FAIL", "PRUNED"  # optuna.trial.TrialState names


class Outcome(NamedTuple):
    state: str
    value: float | None = None
    reason: str = ""


def read_metrics(job_dir: str | Path) -> dict[str, Any] | None:
    """The job's ``metrics.json``, or ``None`` when it is missing or unreadable (a killed job)."""
    try:
        data = json.loads(Path(job_dir, "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def judge(returned: Any, error: BaseException | None, metrics: dict[str, Any] | None) -> Outcome:
    """The trial's outcome from the job's return value (or the exception it escaped with) and its metrics.

    Args:
        returned: the task function's return value (ignored when ``error`` is set).
        error: the exception that left the job, if any (Hydra's ``JobReturn`` with status FAILED).
        metrics: the job's ``metrics.json`` (``None`` if it wrote none).
    """
    status = (metrics or {}).get("status")
    if (metrics or {}).get("pruned"):
        return Outcome(PRUNED, reason=str(metrics["pruned"]))
    if status in ("failed", "interrupted"):
        m = metrics or {}
        return Outcome(FAIL, reason=f"{m.get('error_type', status)}: {m.get('error', m.get('signal', ''))}")
    if error is not None:
        return Outcome(FAIL, reason=f"{type(error).__name__}: {error}")
    if returned is None:
        return Outcome(FAIL, reason="the job returned no objective: set optimized_metric to a logged metric")
    try:
        value = float(returned)
    except (TypeError, ValueError):
        return Outcome(FAIL, reason=f"the job returned {returned!r}, not a number")
    if not math.isfinite(value):
        return Outcome(FAIL, reason=f"the objective is {value}")
    for key, v in (metrics or {}).items():
        if key.startswith("train/loss") and not math.isfinite(_number(v)):  # metrics.json writes NaN as "nan"
            return Outcome(FAIL, reason=f"{key}={v}: training diverged")
    return Outcome(COMPLETE, value)


def judge_from_metrics(metrics: dict[str, Any] | None, metric: str | None) -> Outcome:
    """The outcome of a job whose sweep process died, from its ``metrics.json`` alone (resume)."""
    if metrics is None:
        return Outcome(FAIL, reason="interrupted: its sweep process stopped before the job finished")
    if metrics.get("pruned"):
        return judge(None, None, metrics)
    if metrics.get("status") == "completed" and metric and metric in metrics:
        return judge(metrics[metric], None, metrics)
    if metrics.get("status") == "completed":
        return Outcome(FAIL, reason=f"interrupted: the job finished, but its metrics.json has no {metric}")
    return judge(None, None, metrics)


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0  # not a number at all: not a divergence
