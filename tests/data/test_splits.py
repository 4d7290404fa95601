import numpy as np
import pytest

from bigmodel.data.splits import carve_missing_splits, split_sizes, stratified_split
from bigmodel.utils.errors import ConfigError


def test_split_sizes_cover_everything():
    assert split_sizes(10, [0.7, 0.15, 0.15]) == [8, 1, 1]
    assert sum(split_sizes(1797, [0.7, 0.15, 0.15])) == 1797


def test_bad_fractions():
    with pytest.raises(ConfigError, match="sum to 1"):
        split_sizes(10, [0.5, 0.2])


def test_stratified_split_is_deterministic_disjoint_and_stratified():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    a = stratified_split(labels, [0.6, 0.2, 0.2], seed=1)
    b = stratified_split(labels, [0.6, 0.2, 0.2], seed=1)
    c = stratified_split(labels, [0.6, 0.2, 0.2], seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    allidx = np.concatenate(a)
    assert len(allidx) == len(labels) and len(np.unique(allidx)) == len(labels)
    # every part keeps the class proportions
    for part in a[1:]:
        counts = np.bincount(labels[part], minlength=4)
        assert counts.tolist() == [20, 10, 6, 4]


def test_carve_missing_splits_renormalises_and_stratifies():
    labels = np.repeat([0, 1], [90, 90])
    # nothing missing: the whole pool trains, in order
    assert carve_missing_splits(labels, [], [0.8, 0.1, 0.1], 0)["train"].tolist() == list(range(180))
    # both missing: 80/10/10 of each class
    both = carve_missing_splits(labels, ["val", "test"], [0.8, 0.1, 0.1], 0)
    assert {k: len(v) for k, v in both.items()} == {"train": 144, "val": 18, "test": 18}
    assert (labels[both["val"]] == 0).sum() == 9  # stratified
    # only test missing: train/test renormalised to 8/9 and 1/9
    only_test = carve_missing_splits(labels, ["test"], [0.8, 0.1, 0.1], 0)
    assert set(only_test) == {"train", "test"} and {len(v) for v in only_test.values()} == {160, 20}
    assert np.array_equal(np.sort(np.concatenate(list(only_test.values()))), np.arange(180))
    # deterministic per seed, different across seeds
    again = carve_missing_splits(labels, ["val", "test"], [0.8, 0.1, 0.1], 0)
    assert all(np.array_equal(both[k], again[k]) for k in both)
    other = carve_missing_splits(labels, ["val", "test"], [0.8, 0.1, 0.1], 1)
    assert not np.array_equal(both["val"], other["val"])


def test_carve_missing_splits_bad_fractions():
    with pytest.raises(ConfigError, match="three values"):
        carve_missing_splits([0, 1], ["val"], [0.9, 0.1], 0)
    with pytest.raises(ConfigError, match="no share"):
        carve_missing_splits([0, 1], ["test"], [0.0, 1.0, 0.0], 0)
