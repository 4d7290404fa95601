"""Prediction rows, the one answer format of ``predict`` (``predictions.csv``) and ``serve`` (JSON).

Columns: ``path`` (the input: a file, ``<file>:<line>``, ``text:<i>`` or ``upload``), ``label`` (top-1
class name, or a language model's continuation), ``prob`` (top-1 probability), ``top_k`` (a JSON list of
``[label, prob]``, most likely first) and ``error`` (empty unless the input could not be used).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bigmodel.utils.io import atomic_write

COLUMNS = ["path", "label", "prob", "top_k", "error"]


def class_rows(
    paths: Sequence[str], probs: torch.Tensor, class_names: Sequence[str], top_k: int = 3
) -> list[dict[str, Any]]:
    """One row per input from probabilities ``(B, K)``; ``top_k`` is clipped to K."""
    k = max(1, min(int(top_k), probs.shape[-1]))
    values, idx = probs.float().topk(k, dim=-1)
    rows = []
    for path, v, i in zip(paths, values.tolist(), idx.tolist(), strict=True):
        pairs = [[str(class_names[j]), round(p, 6)] for p, j in zip(v, i, strict=True)]
        rows.append({"path": path, "label": pairs[0][0], "prob": pairs[0][1], "top_k": pairs, "error": ""})
    return rows


def text_rows(paths: Sequence[str], texts: Sequence[str]) -> list[dict[str, Any]]:
    """Language-model rows: the continuation is the ``label``; no probabilities."""
    return [
        {"path": p, "label": t, "prob": None, "top_k": [], "error": ""}
        for p, t in zip(paths, texts, strict=True)
    ]


def error_row(path: str, error: str) -> dict[str, Any]:
    return {"path": path, "label": None, "prob": None, "top_k": [], "error": error}


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` (atomically); ``top_k`` as JSON, empty cells for None."""
    path = Path(path)
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            cells = {k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS}
            cells["top_k"] = json.dumps(row.get("top_k") or [])
            writer.writerow(cells)
    return path


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``predictions.csv`` (``top_k`` parsed, ``prob`` as float or None)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["top_k"] = json.loads(r["top_k"] or "[]")
        r["prob"] = float(r["prob"]) if r["prob"] else None
    return rows
