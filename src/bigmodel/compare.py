"""Compare training runs: ``python -m bigmodel.compare [runs=GLOB] [experiment=NAME] [tags=[a,b]]`` (also
``bigmodel-compare``, ``make compare``).

Reads every run folder matched (``metrics.json``, ``.hydra/config.yaml``, ``csv/metrics.csv``) and writes
``logs/compare/runs/<timestamp>_<id>/report.html`` (table, test metric vs parameters and vs CPU latency with
the Pareto front, overlaid learning curves, an overfitting flag per run stated as numbers) plus
``runs.json`` (the same rows), and prints the table with Rich. With ``logger=wandb`` the table also goes to
W&B as a Table. Runs without ``metrics.json`` (crashed or killed) are listed as incomplete.

``experiment=`` is accepted as an alias of ``experiment_name=`` (``experiment`` is also the name of the
training config group, which Hydra would otherwise try to load).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from bigmodel.reports import html as H
from bigmodel.reports.runs import select_runs
from bigmodel.reports.table import COLUMNS, build_row, fmt
from bigmodel.utils.cli import entry_point
from bigmodel.utils.config import instantiate_group
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


def compare(cfg: DictConfig) -> dict[str, Any]:
    """Build the comparison of the runs selected by ``cfg.runs``/``experiment_name``/``tags``; returns
    ``{"rows": [...], "report": path}``.

    Raises:
        ConfigError: no run matched (the message names the glob or the filter), or a bad ``metric``.
    """
    tags = (
        OmegaConf.to_container(cfg.tags, resolve=True)
        if OmegaConf.is_list(cfg.get("tags"))
        else cfg.get("tags")
    )
    tags = [tags] if isinstance(tags, str) else tags
    exp = cfg.get("experiment_name")
    exp = OmegaConf.to_container(exp, resolve=True) if OmegaConf.is_list(exp) else exp
    globs = OmegaConf.to_container(cfg.runs, resolve=True) if OmegaConf.is_list(cfg.runs) else str(cfg.runs)
    runs = select_runs(globs, exp, tags)
    rows = [build_row(r, str(cfg.metric), int(cfg.overfit_patience)) for r in runs]
    complete = [r for r in rows if r["status"] == "completed"]
    incomplete = [r for r in rows if r["status"] != "completed"]
    metric = _main_metric(complete, str(cfg.metric))

    out = Path(cfg.paths.output_dir)
    report = out / "report.html"
    with atomic_write(report, "w") as f:
        f.write(_report_html(rows, complete, incomplete, metric, cfg))
    with atomic_write(out / "runs.json", "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "curves"} for r in rows], f, indent=2)
    _print_table(rows)
    _log_wandb(cfg, rows)
    if incomplete:
        log.warning(
            "%d run(s) are incomplete (no metrics.json, or status not completed): %s",
            len(incomplete),
            ", ".join(r["path"] for r in incomplete),
        )
    log.info("Compared %d runs (%d complete). Report: %s", len(rows), len(complete), report)
    return {"rows": rows, "report": str(report)}


def _main_metric(rows: list[dict[str, Any]], wanted: str) -> str:
    """The metric the plots use: ``wanted``, or the one most runs report."""
    if wanted != "auto" or not rows:
        return "acc" if wanted == "auto" else wanted
    names = [r["metric"] for r in rows]
    return max(set(names), key=names.count)


def _report_html(rows, complete, incomplete, metric: str, cfg: DictConfig) -> str:
    # matplotlib (about 1-2 s of import) only once there are runs to plot: a filter that matches nothing fails fast
    from bigmodel.reports.plots import learning_curves, metric_vs_cost

    sections = [
        f'<p class="note">{len(rows)} runs matched runs=<code>{H.html.escape(str(cfg.runs))}</code>'
        f"{' experiment=' + str(cfg.experiment_name) if cfg.get('experiment_name') else ''}"
        f"{' tags=' + str(list(cfg.tags)) if cfg.get('tags') else ''}: {len(complete)} complete, "
        f"{len(incomplete)} incomplete. Plots use test/{metric}.</p>",
        "<h2>Runs</h2>",
        H.table(
            COLUMNS, rows, fmt, "runs", row_class=lambda r: "" if r["status"] == "completed" else "incomplete"
        ),
    ]
    if incomplete:
        items = "".join(f"<li>{r['path']} ({r['status']})</li>" for r in incomplete)
        sections.append(f'<h3>Incomplete runs</h3><ul id="incomplete">{items}</ul>')
    sections.append("<h2>Overfitting</h2><ul>")
    sections += [f"<li><b>{r['experiment']}</b> {r['run']}: {r['overfit_detail'] or '—'}</li>" for r in rows]
    sections.append("</ul><h2>Plots</h2>")
    plots = [
        ("test_vs_params", metric_vs_cost(complete, "params", metric, "parameters")),
        ("test_vs_latency", metric_vs_cost(complete, "latency_ms", metric, "CPU latency (ms)")),
        ("learning_curves", learning_curves(rows)),
    ]
    for name, png in plots:
        if png is None:
            what = "latency numbers (make export / make bench)" if "latency" in name else "data"
            sections.append(f'<p class="note" id="{name}-missing">{name}: no run has the {what} to plot.</p>')
        else:
            sections.append(H.img_tag(png, name, id_=name))
    return H.page("bigmodel run comparison", sections)


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="bigmodel compare (— = not logged)", show_lines=False)
    shown = [c for c in COLUMNS if c[0] not in ("overfit", "run")]
    table.add_column("run id")  # the folder's random suffix: tells runs of one experiment apart
    for _key, header, kind in shown:
        table.add_column(header, justify="left" if kind == "s" else "right", overflow="fold")
    table.add_column("overfitting")
    for r in rows:
        style = None if r["status"] == "completed" else "dim"
        cells = [fmt(r.get(k), kind) for k, _, kind in shown]
        table.add_row(r["run"].rsplit("_", 1)[-1], *cells, r["overfit_short"] or "—", style=style)
    Console(width=max(200, Console().width)).print(table)


def _log_wandb(cfg: DictConfig, rows: list[dict[str, Any]]) -> None:
    """The table as a W&B Table ``compare/runs`` when a wandb logger is configured (offline works)."""
    from bigmodel.loggers.wandb_logger import WandbLogger

    loggers = [lg for lg in instantiate_group(cfg.get("logger"), "logger") if isinstance(lg, WandbLogger)]
    for lg in loggers:
        cols = [h for _, h, _ in COLUMNS]
        data = [[fmt(r.get(k), kind) if kind == "s" else r.get(k) for k, _, kind in COLUMNS] for r in rows]
        lg.log_table(key="compare/runs", columns=cols, data=data)
        lg.finish()


@entry_point("compare")
def _hydra_main(cfg: DictConfig) -> None:
    compare(cfg)


def main() -> None:
    """Console-script entry point; ``experiment=X`` is read as ``experiment_name=X``."""
    sys.argv = [
        "experiment_name=" + a.split("=", 1)[1] if a.startswith("experiment=") else a for a in sys.argv
    ]
    _hydra_main()


if __name__ == "__main__":
    main()
