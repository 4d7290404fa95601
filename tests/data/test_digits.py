import pytest
import torch

from bigmodel.data.digits import DigitsDataModule
from bigmodel.utils.errors import ConfigError


def test_digits_shapes_splits_and_determinism():
    dm = DigitsDataModule(batch_size=32, seed=3)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == torch.long
    sizes = [len(d) for d in (dm.data_train, dm.data_val, dm.data_test)]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == pytest.approx(0.15 * 1797, abs=10)
    dm2 = DigitsDataModule(batch_size=32, seed=3)
    dm2.setup("fit")
    assert torch.equal(dm.data_test.tensors[0], dm2.data_test.tensors[0])
    dm3 = DigitsDataModule(batch_size=32, seed=4)
    dm3.setup("fit")
    assert not torch.equal(dm.data_test.tensors[0], dm3.data_test.tensors[0])


def test_digits_rejects_wrong_shape_settings():
    with pytest.raises(ConfigError, match="data.num_classes=7"):
        DigitsDataModule(num_classes=7)
