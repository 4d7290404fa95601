"""Deterministic, stratified train/val/test splits shared by every DataModule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bigmodel.utils.errors import ConfigError


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Sizes of each part when ``n`` items are split by ``fractions`` (which must sum to 1).
    Rounding remainders go to the first part (usually train).

    Raises:
        ConfigError: fractions that are negative or do not sum to 1.
    """
    fr = np.asarray(fractions, dtype=float)
    if (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ConfigError(
            f"Split fractions {list(fractions)} must be non-negative and sum to 1; "
            "fix `data.split_fractions` (for example [0.7, 0.15, 0.15])."
        )
    sizes = np.floor(fr * n).astype(int)
    sizes[0] += n - sizes.sum()
    return sizes.tolist()


def stratified_split(labels: Sequence[int], fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split item indices into parts (e.g. train/val/test) with the class mix of ``labels`` kept in
    every part, deterministically for a given ``seed``.

    Args:
        labels: class id per item, shape ``(N,)``.
        fractions: one fraction per part, summing to 1.
        seed: the same seed always gives the same split.

    Returns:
        One sorted index array per part; together they cover ``range(N)`` exactly once.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        start = 0
        for p, size in enumerate(split_sizes(len(idx), fractions)):
            parts[p].extend(idx[start : start + size].tolist())
            start += size
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
