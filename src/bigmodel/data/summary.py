"""The one-line data summary every DataModule logs after ``setup``: split sizes and, where the data has
classes, the count of each class per split (so a missing or lopsided class shows before training)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset


def labels_of(ds: Dataset | None) -> list[int] | None:
    """The class index of every item, read without loading the items; ``None`` for data without classes
    (token windows) or a dataset type that does not expose them."""
    if ds is None:
        return None
    if isinstance(ds, Subset):
        parent = labels_of(ds.dataset)
        return None if parent is None else [parent[i] for i in ds.indices]
    if isinstance(ds, TensorDataset) and len(ds.tensors) == 2 and ds.tensors[1].dtype == torch.long:
        return ds.tensors[1].tolist()
    labels: Any = getattr(ds, "labels", None)
    if labels is None and isinstance(getattr(ds, "items", None), list):  # (path, label) pairs (audio clips)
        items = ds.items  # type: ignore[attr-defined]
        labels = [it[1] for it in items] if items and isinstance(items[0], tuple) else None
    if labels is None:
        return None
    return labels.tolist() if isinstance(labels, torch.Tensor) else [int(x) for x in labels]


def split_summary(splits: dict[str, Dataset | None], class_names: Sequence[str] | None = None) -> str:
    """``train 1077 / val 360 / test 360; classes (train/val/test): 0 107/36/36, 1 ...`` for the log."""
    present = {k: v for k, v in splits.items() if v is not None}
    sizes = " / ".join(f"{k} {len(v)}" for k, v in present.items())  # type: ignore[arg-type]
    counts = {k: labels_of(v) for k, v in present.items()}
    if not present or any(c is None for c in counts.values()):
        return sizes
    per = {k: Counter(c) for k, c in counts.items()}  # type: ignore[arg-type]
    ids = sorted(set().union(*per.values()))
    names = list(class_names) if class_names and len(class_names) > max(ids, default=-1) else None
    cells = [f"{names[i] if names else i} " + "/".join(str(per[k][i]) for k in per) for i in ids]
    return f"{sizes}; {len(ids)} classes ({'/'.join(per)}): " + ", ".join(cells)
