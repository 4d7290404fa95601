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


def carve_missing_splits(
    labels: Sequence[int], missing: Sequence[str], fractions: Sequence[float], seed: int
) -> dict[str, np.ndarray]:
    """Split a training pool into ``train`` plus the ``missing`` ones of ``val``/``test`` (those the
    dataset did not provide as files or folders), stratified and seeded.

    The train/val/test ``fractions`` of the parts being made are renormalised to sum to 1: with
    ``fractions=(0.8, 0.1, 0.1)`` and only ``test`` missing, train keeps 8/9 of the pool and test 1/9.

    Args:
        labels: class id per pool item, shape ``(N,)``.
        missing: the splits to carve, a subset of ``("val", "test")``; empty keeps the whole pool as train.
        fractions: ``data.split_fractions``, three values for train/val/test.
        seed: split seed.

    Returns:
        ``{"train": idx, <each missing split>: idx}``, sorted index arrays into ``labels``.

    Raises:
        ConfigError: not three fractions, or fractions of the carved parts summing to 0.
        ValueError: a ``missing`` name other than ``val``/``test`` (a programming error).
    """
    labels = np.asarray(labels)
    if not missing:
        return {"train": np.arange(len(labels), dtype=np.int64)}
    if len(fractions) != 3:
        raise ConfigError(
            f"data.split_fractions={list(fractions)} needs three values (train, val, test), e.g. [0.8, 0.1, 0.1]."
        )
    unknown = sorted(set(missing) - {"val", "test"})
    if unknown:
        raise ValueError(f"carve_missing_splits: missing={list(missing)} may hold only 'val' and 'test'.")
    fr = dict(zip(("train", "val", "test"), fractions, strict=True))
    names = ["train", *missing]
    total = sum(fr[n] for n in names)
    if total <= 0:
        raise ConfigError(f"data.split_fractions={list(fractions)} gives no share to the splits {names}.")
    parts = stratified_split(labels, [fr[n] / total for n in names], seed)
    return dict(zip(names, parts, strict=True))
