import numpy as np
import pytest

from bigmodel.data.splits import split_sizes, stratified_split
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
