"""The value a hyper-parameter sweep optimizes (``optimized_metric``), checked so a sweep cannot go wrong
quietly: a key that is never logged stops the sweep after its first trial, and a NaN/inf objective or
training loss makes that trial fail instead of being ranked (a diverged trial with chance accuracy is never
"best")."""

from __future__ import annotations

import math
from typing import Any

from bigmodel.utils.errors import ConfigError


class ObjectiveNotLogged(ConfigError):  # noqa: N818 - a ConfigError: the user's key is wrong
    """``optimized_metric`` names a metric the run never logged; the message lists the logged names.
    :func:`bigmodel.utils.cli.entry_point` stops a sweep at the first such trial (exit 2)."""


class NonFiniteObjective(RuntimeError):  # noqa: N818
    """The objective is NaN or inf: the trial fails (its job log and metrics.json say why)."""


def objective(metrics: dict[str, Any], key: str | None, sweeping: bool) -> float | None:
    """``float(metrics[key])``; ``None`` without a key, or outside a sweep when the key is missing.

    Raises:
        ObjectiveNotLogged: in a sweep, ``key`` is not among the metrics (the names logged are listed).
        NonFiniteObjective: in a sweep, the value is NaN or inf, or so is the training loss (``train/loss*``).
    """
    if not key:
        return None
    if key not in metrics:
        if not sweeping:
            return None
        logged = sorted(k for k in metrics if "/" in k)
        raise ObjectiveNotLogged(
            f"optimized_metric={key} was never logged by this trial, so the sweep has nothing to optimize; "
            f"stopping after the first trial. Logged metrics: {', '.join(logged) or '(none)'}. Set "
            "optimized_metric=<one of them> (e.g. in the hparams_search config)."
        )
    value = float(metrics[key])
    if sweeping and not math.isfinite(value):
        raise NonFiniteObjective(f"optimized_metric {key}={value}: the trial is failed, not ranked.")
    if sweeping:
        # a diverged run (nonfinite_loss=skip/ignore) can keep a finite, chance-level objective: never rank it
        for name in sorted(k for k in metrics if k.startswith("train/loss")):
            loss = float(metrics[name])
            if not math.isfinite(loss):
                raise NonFiniteObjective(
                    f"{name}={loss}: training diverged, so the trial is failed, not ranked "
                    f"({key}={value:.5g} would be meaningless)."
                )
    return value
