"""End of a sweep: what it found, written under the sweep dir, and a summary in the log.

- ``optimization_results.yaml``: best parameters and value (the keys of hydra-optuna-sweeper's file, plus
  the best trial's number and job folder, and the count of trials per state).
- ``trials.csv`` and ``trials.md``: every trial of the study (this run's and earlier ones): number, state,
  value, parameters, job folder and, for failed ones, the reason.
- ``optimization_history.png`` and ``param_importances.png``: Optuna's matplotlib plots. Importances need
  at least two COMPLETE trials that differ in a parameter; otherwise the file is skipped and the log says why.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def fail_reason(study: Any, trial: Any) -> str:
    """Why a FAIL trial failed: its own attribute, or the study's note for a trial closed on resume."""
    return str(trial.user_attrs.get("fail_reason") or study.user_attrs.get(f"fail_reason/{trial.number}", ""))


def rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial, in trial-number order."""
    names = sorted({k for t in study.trials for k in t.params})
    out = []
    for t in sorted(study.trials, key=lambda t: t.number):
        duration = t.duration.total_seconds() if t.duration is not None else None
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                **{n: t.params.get(n) for n in names},
                "duration_s": round(duration, 1) if duration is not None else None,
                "job_dir": t.user_attrs.get("job_dir", ""),
                "fail_reason": fail_reason(study, t) if t.state.name == "FAIL" else "",
            }
        )
    return out


def write(study: Any, sweep_dir: Path, metric: str | None) -> dict[str, Any]:
    """Write the files above and log the summary; returns the content of ``optimization_results.yaml``."""
    table = rows(study)
    counts: dict[str, int] = {}
    for r in table:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    results = {
        "name": "bigmodel_optuna",
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": metric,
        "best_params": dict(best.params) if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "best_job_dir": best.user_attrs.get("job_dir") if best else None,
        "trials": counts,
    }
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    _write_table(table, sweep_dir)
    _plots(study, sweep_dir)
    _log_summary(results, table, sweep_dir)
    return results


def _write_table(table: list[dict[str, Any]], sweep_dir: Path) -> None:
    if not table:
        return
    columns = list(table[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    (sweep_dir / "trials.csv").write_text(buf.getvalue())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in table:
        lines.append("| " + " | ".join(_cell(r[c]) for c in columns) + " |")
    (sweep_dir / "trials.md").write_text("\n".join(lines) + "\n")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.6g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _plots(study: Any, sweep_dir: Path) -> None:
    """Optuna's matplotlib plots as PNG (matplotlib is a dependency; plotly, for HTML, is not)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; the sweep is ending, no other figure is open in this process
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plots = {"optimization_history.png": ovm.plot_optimization_history}
    n_complete = sum(t.state.name == "COMPLETE" for t in study.trials)
    if n_complete >= 2:
        plots["param_importances.png"] = ovm.plot_param_importances
    else:
        log.info("No param_importances.png: importances need 2 COMPLETE trials, the study has %d", n_complete)
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = plot(study)
            ax.figure.savefig(sweep_dir / name, dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
        except Exception as e:  # a plot must not fail a sweep whose trials are done (e.g. constant params)
            log.warning("No %s: %s: %s", name, type(e).__name__, e)


def _log_summary(results: dict[str, Any], table: list[dict[str, Any]], sweep_dir: Path) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results["trials"].items()))
    log.info("Sweep %s: %s (%s)", sweep_dir, counts or "no trials", results["study_name"])
    if results["best_trial"] is not None:
        log.info("Best trial %d (%s): %s=%s with %s", results["best_trial"], results["best_job_dir"],
                 results["metric"], results["best_value"], results["best_params"])  # fmt: skip
    else:
        log.warning("No trial completed: there is no best trial.")
    failed = [r for r in table if r["state"] == "FAIL"]
    if failed:
        lines = [f"{len(failed)} failed trial(s):"]
        lines += [f"  #{r['number']} {r['job_dir']}: {r['fail_reason']}" for r in failed]
        log.warning("\n".join(lines))
    log.info("Results: %s, trials.csv, trials.md", sweep_dir / "optimization_results.yaml")
