"""The comparison report's plots (matplotlib, Agg backend), returned as PNG bytes to embed in HTML."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; also safe in worker threads and on servers
import matplotlib.pyplot as plt  # noqa: E402

from bigmodel.reports.table import LOWER_IS_BETTER, pareto_front  # noqa: E402


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed (matplotlib keeps every open figure alive)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def metric_vs_cost(rows: list[dict[str, Any]], cost: str, metric: str, xlabel: str) -> bytes | None:
    """Scatter of ``test/<metric>`` against ``rows[i][cost]`` (log x), one label per run, with the Pareto
    front (cheapest for a given score) drawn as a line of stars. None when no run has both numbers."""
    pts = [(r, float(r[cost]), float(r["test"])) for r in rows if r.get(cost) and r.get("test") is not None]
    pts = [p for p in pts if p[0]["metric"] == metric]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    experiments = sorted({r["experiment"] for r, _, _ in pts})
    colors = {e: plt.cm.tab10(i % 10) for i, e in enumerate(experiments)}
    for r, x, y in pts:
        ax.scatter(x, y, color=colors[r["experiment"]], s=40, zorder=3)
        ax.annotate(r["experiment"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    front = pareto_front([(x, y) for _, x, y in pts], higher_is_better=metric not in LOWER_IS_BETTER)
    ax.plot(
        [pts[i][1] for i in front],
        [pts[i][2] for i in front],
        "k--*",
        markersize=12,
        label="Pareto front",
        zorder=2,
    )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"test/{metric}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"test/{metric} vs {xlabel}")
    return png_bytes(fig)


def learning_curves(rows: list[dict[str, Any]]) -> bytes | None:
    """Train and val loss against the optimizer step, every run overlaid (one colour per run, train solid,
    val dashed with markers). None when no run has a loss curve."""
    with_curves = [r for r in rows if r["curves"].get("train/loss") or r["curves"].get("val/loss")]
    if not with_curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for i, r in enumerate(with_curves):
        color = plt.cm.tab10(i % 10)
        label = f"{r['experiment']} ({r['run'][-6:]})"
        for ax, key, style in ((axes[0], "train/loss", "-"), (axes[1], "val/loss", "--o")):
            series = r["curves"].get(key, [])
            if series:
                ax.plot([s for s, _ in series], [v for _, v in series], style, color=color, label=label, ms=3)
    for ax, title in zip(axes, ("train/loss", "val/loss"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    return png_bytes(fig)
