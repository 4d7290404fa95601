"""BaseDataModule: the one num_classes check shared by every classification DataModule."""

from __future__ import annotations

import pytest

from bigmodel.data.base import BaseDataModule
from bigmodel.utils.errors import ConfigError


def test_check_num_classes_sets_or_rejects():
    dm = BaseDataModule()
    dm.check_num_classes(["a", "b", "c"], "somewhere")  # not configured: taken from the data
    assert dm.num_classes == 3
    dm.num_classes = 2
    with pytest.raises(
        ConfigError,
        match=r"data.num_classes=2, but /d has 3 classes \['a', 'b', 'c'\]; set data.num_classes=3",
    ):
        dm.check_num_classes(["a", "b", "c"], "/d")
    dm.check_num_classes(["x", "y"], "/d")  # matching: fine
    assert dm.num_classes == 2


def test_global_batch_size_is_accepted_not_stored():
    dm = BaseDataModule(micro_batch_size=4, global_batch_size=32)  # the data configs pass it
    assert dm.batch_size == 4 and not hasattr(dm, "global_batch_size")
