"""One comparison row per run: the numbers ``bigmodel.compare`` shows, each taken from one named source.

- parameters: ``run.params.total`` of ``csv/hparams.yaml`` (what the tracking glue logs at fit start);
- train FLOPs/sample: ``perf/tflops_per_sec x 1e12 x devices / perf/samples_per_sec`` from ``metrics.json``
  (the throughput callback's flop counter: forward + backward, roughly 3x a forward pass), or a logged
  ``flops_per_sample``;
- best val / test: ``val/<metric>_best`` (else the best ``val/<metric>`` of the CSV curve) and ``test/<metric>``;
- last epoch (0-based, as Lightning counts), wall time, throughput: ``epoch``, ``wall_s``, ``perf/samples_per_sec`` (``perf/tokens_per_sec``);
- CPU latency: a ``*latency*_ms`` key of ``metrics.json``, else of an ``export/**/manifest.json`` or
  ``bench*.json`` in the run folder (what ``make export`` / ``make bench`` write).

A field that is missing is ``None`` (shown as "—").
"""

from __future__ import annotations

import json
import re
from typing import Any

from bigmodel.reports.curves import Overfit, overfit, read_curves
from bigmodel.reports.runs import Run, number

# (key, header, format) of the table, in order
COLUMNS: list[tuple[str, str, str]] = [
    ("run", "run", "s"),
    ("experiment", "experiment", "s"),
    ("net", "net", "s"),
    ("status", "status", "s"),
    ("params", "parameters", "int"),
    ("flops_per_sample", "train FLOPs/sample", "sci"),
    ("metric", "metric", "s"),
    ("best_val", "best val", "f4"),
    ("test", "test", "f4"),
    # metrics.json's `epoch`: the 0-based index of the last epoch trained (README: epochs count from 0), so a
    # 1-epoch run shows 0; the header says so rather than reading like a count
    ("epochs", "last epoch (from 0)", "int"),
    ("wall_s", "wall (s)", "f1"),
    ("throughput", "samples/s", "f1"),
    ("latency_ms", "CPU latency (ms)", "f2"),
    ("overfit", "overfitting", "s"),
]
LOWER_IS_BETTER = {"loss", "ppl", "bpc", "bpt"}
_LATENCY = re.compile(r"latency.*_ms$|_ms.*latency", re.IGNORECASE)


def pick_metric(run: Run, wanted: str) -> str:
    """The metric compared for ``run``: ``wanted``, or with ``auto`` ``acc`` when the run logged it and
    ``loss`` otherwise (language models)."""
    if wanted != "auto":
        return wanted
    keys = set(run.metrics) | {k for k in run.extra.get("curves", {})}
    return "acc" if {"test/acc", "val/acc"} & keys else "loss"


def _best_val(run: Run, metric: str, curves: dict[str, list[tuple[int, float]]]) -> float | None:
    best = number(run.metrics.get(f"val/{metric}_best"))
    if best is not None:
        return best
    series = [v for _, v in curves.get(f"val/{metric}", [])]
    if series:
        return min(series) if metric in LOWER_IS_BETTER else max(series)
    return number(run.metrics.get(f"val/{metric}"))


def _devices(config: dict[str, Any]) -> int:
    trainer = config.get("trainer") or {}
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes") or 1
    return (devices if isinstance(devices, int) and devices > 0 else 1) * (
        nodes if isinstance(nodes, int) else 1
    )


def _flops_per_sample(run: Run) -> float | None:
    logged = number(run.metrics.get("flops_per_sample"))
    if logged is not None:
        return logged
    tflops, sps = (
        number(run.metrics.get("perf/tflops_per_sec")),
        number(run.metrics.get("perf/samples_per_sec")),
    )
    if tflops is None or not sps:
        return None
    return tflops * 1e12 * _devices(run.config) / sps


def _latency_ms(run: Run) -> float | None:
    def find(d: dict[str, Any]) -> float | None:
        for k, v in sorted(d.items()):
            if isinstance(v, dict):
                got = find(v)
                if got is not None:
                    return got
            elif _LATENCY.search(str(k)) and number(v) is not None:
                return number(v)
        return None

    got = find(run.metrics)
    if got is not None:
        return got
    for f in sorted([*run.path.glob("export/**/manifest.json"), *run.path.glob("bench*.json")]):
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        got = find(data) if isinstance(data, dict) else None
        if got is not None:
            return got
    return None


def build_row(run: Run, metric: str = "auto", patience: int = 2) -> dict[str, Any]:
    """The table row of one run (keys of :data:`COLUMNS`, plus ``overfit_detail`` and ``curves``)."""
    curves = read_curves(run.path / "csv" / "metrics.csv")
    run.extra["curves"] = curves
    m = pick_metric(run, metric)
    of: Overfit = overfit(curves, patience)
    epoch = run.metrics.get("epoch")
    return {
        "run": run.name,
        "path": str(run.path),
        "experiment": run.experiment,
        "net": run.net,
        "status": run.status,
        "params": run.params,
        "flops_per_sample": _flops_per_sample(run),
        "metric": m,
        "best_val": _best_val(run, m, curves),
        "test": number(run.metrics.get(f"test/{m}")),
        "epochs": int(epoch) if number(epoch) is not None else None,
        "wall_s": number(run.metrics.get("wall_s")),
        "throughput": number(run.metrics.get("perf/samples_per_sec")),
        "latency_ms": _latency_ms(run),
        "overfit": ("yes" if of.flagged else "no") if curves else None,
        "overfit_short": of.short() if curves else None,
        "overfit_detail": of.describe(patience) if curves else None,
        "overfit_numbers": vars(of) if curves else None,
        "curves": curves,
    }


def fmt(value: Any, kind: str) -> str:
    """A cell as text; ``None`` is "—"."""
    if value is None:
        return "—"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "sci":
        return f"{float(value):.3g}"
    if kind.startswith("f"):
        return f"{float(value):.{int(kind[1:])}f}"
    return str(value)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points ``(cost, score)`` that no other point beats on both: lower-or-equal cost and
    better-or-equal score, one of them strictly. Sorted by cost."""
    sign = 1 if higher_is_better else -1
    front = []
    for i, (c, s) in enumerate(points):
        dominated = any(
            (c2 <= c and sign * s2 >= sign * s) and (c2 < c or sign * s2 > sign * s)
            for j, (c2, s2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])
