"""Learning curves from Lightning's ``csv/metrics.csv`` and the overfitting figures derived from them.

The CSV logger writes one sparse row per ``log`` call (``step``, ``epoch`` and whichever metrics were logged
then), so each metric is read as its own ``(step, value)`` series.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path


def read_curves(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` from a Lightning ``metrics.csv``; ``{}`` when the file is missing
    or unreadable. Non-numeric and non-finite cells are skipped."""
    path = Path(path)
    if not path.is_file():
        return {}
    out: dict[str, list[tuple[int, float]]] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    step = int(float(row.get("step") or 0))
                except ValueError:
                    continue
                for key, cell in row.items():
                    if key in ("step", "epoch") or not cell:
                        continue
                    try:
                        value = float(cell)
                    except ValueError:
                        continue
                    if math.isfinite(value):
                        out.setdefault(key, []).append((step, value))
    except (OSError, csv.Error):
        return {}
    return out


@dataclass
class Overfit:
    """Overfitting figures of one run, stated as numbers.

    Attributes:
        gap_acc: ``train/acc - val/acc`` at the last evaluation (None without both).
        gap_loss: ``val/loss - mean train/loss`` since the previous evaluation (None without both).
        val_rises: how many of the last evaluations in a row had a higher ``val/loss`` than the one before.
        train_falls: whether the mean ``train/loss`` fell over those same evaluations.
        flagged: ``val_rises >= patience`` while ``train_falls``.
    """

    gap_acc: float | None
    gap_loss: float | None
    val_rises: int
    train_falls: bool
    flagged: bool

    def short(self) -> str:
        """E.g. ``no: acc gap +0.008, loss gap +0.020, val up 0``."""
        parts = [
            f"{k} {v:+.3f}"
            for k, v in (("acc gap", self.gap_acc), ("loss gap", self.gap_loss))
            if v is not None
        ]
        return f"{'YES' if self.flagged else 'no'}: " + ", ".join([*parts, f"val up {self.val_rises}"])

    def describe(self, patience: int) -> str:
        parts = []
        if self.gap_acc is not None:
            parts.append(f"train-val acc gap {self.gap_acc:+.3f}")
        if self.gap_loss is not None:
            parts.append(f"val-train loss gap {self.gap_loss:+.3f}")
        parts.append(
            f"val/loss rose {self.val_rises} eval(s) in a row"
            + (" while train/loss fell" if self.val_rises and self.train_falls else "")
        )
        verdict = "OVERFITTING" if self.flagged else "ok"
        return f"{verdict} (rule: val/loss up >= {patience} evals while train/loss down): " + "; ".join(parts)


def _mean_between(series: list[tuple[int, float]], lo: int, hi: int) -> float | None:
    vals = [v for s, v in series if lo < s <= hi]
    return sum(vals) / len(vals) if vals else None


def overfit(curves: dict[str, list[tuple[int, float]]], patience: int = 2) -> Overfit:
    """The overfitting figures (see :class:`Overfit`) of one run's curves.

    ``train/loss`` is logged per step and ``val/loss`` per evaluation; the train loss that goes with an
    evaluation is the mean of the steps since the evaluation before it, so noise per step does not count.
    """
    train, val = curves.get("train/loss", []), curves.get("val/loss", [])
    gap_acc = None
    if curves.get("train/acc") and curves.get("val/acc"):
        gap_acc = curves["train/acc"][-1][1] - curves["val/acc"][-1][1]
    steps = [s for s, _ in val]
    train_at = [
        _mean_between(train, lo, hi) for lo, hi in zip([-1, *steps][: len(steps)], steps, strict=True)
    ]
    gap_loss = None
    if val and train_at and train_at[-1] is not None:
        gap_loss = val[-1][1] - train_at[-1]
    rises = 0
    for i in range(len(val) - 1, 0, -1):
        if val[i][1] > val[i - 1][1]:
            rises += 1
        else:
            break
    falls = False
    if rises:
        first, last = train_at[len(val) - 1 - rises], train_at[-1]
        falls = first is not None and last is not None and last < first
    return Overfit(gap_acc, gap_loss, rises, falls, bool(rises >= patience and falls))
