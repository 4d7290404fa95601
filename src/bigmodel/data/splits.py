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


def few_label_split(
    labels: Sequence[int],
    seed: int,
    labels_per_class: int | None = None,
    labeled_fraction: float | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training set into a small labelled subset and the unlabelled rest, per class and seeded.

    Exactly one of ``labels_per_class`` (N items of every class) or ``labeled_fraction`` (the fraction
    f of every class, at least one item each) must be given. The same ``seed`` always gives the same
    subset; the draw is independent of the order the classes appear in.

    Args:
        labels: class id per training item, shape ``(N,)``.
        seed: ``data.seed``.
        labels_per_class: ``data.labels_per_class``.
        labeled_fraction: ``data.labeled_fraction`` in (0, 1].
        class_names: names used in error messages (default: the class ids).

    Returns:
        ``(labeled, unlabeled)``: sorted disjoint index arrays covering ``range(N)``.

    Raises:
        ConfigError: both or neither option set, a value out of range, or ``labels_per_class`` larger
            than the smallest class (naming that class and its count).
    """
    if (labels_per_class is None) == (labeled_fraction is None):
        raise ConfigError(
            "Set exactly one of data.labels_per_class (labels kept per class) or data.labeled_fraction "
            f"(fraction kept per class); got labels_per_class={labels_per_class}, labeled_fraction={labeled_fraction}."
        )
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    name = (lambda c: class_names[c]) if class_names is not None else str  # noqa: E731
    if labels_per_class is not None:
        if labels_per_class < 1:
            raise ConfigError(f"data.labels_per_class={labels_per_class} must be >= 1.")
        small = int(np.argmin(counts))
        if labels_per_class > counts[small]:
            raise ConfigError(
                f"data.labels_per_class={labels_per_class} is larger than class {name(int(classes[small]))!r}, "
                f"which has only {int(counts[small])} training items; lower data.labels_per_class to at most "
                f"{int(counts[small])}."
            )
    elif not 0 < labeled_fraction <= 1:
        raise ConfigError(f"data.labeled_fraction={labeled_fraction} must be in (0, 1].")
    labeled: list[int] = []
    for cls, count in zip(classes, counts, strict=True):
        # one generator per class, seeded by (seed, class id): adding a class never reshuffles the others
        rng = np.random.default_rng([seed, int(cls)])
        idx = rng.permutation(np.flatnonzero(labels == cls))
        k = labels_per_class if labels_per_class is not None else max(1, round(labeled_fraction * count))
        labeled.extend(idx[:k].tolist())
    lab = np.sort(np.asarray(labeled, dtype=np.int64))
    rest = np.setdiff1d(np.arange(len(labels)), lab)
    return lab, rest
