"""Vision DataModules: shapes, dtypes, split sizes, determinism and offline behaviour on the real data."""

from __future__ import annotations

import os
from urllib.error import URLError

import pytest
import torch

from bigmodel.data.vision import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    build_transforms,
)
from bigmodel.utils.errors import ConfigError

IDX = {"mnist": (MNISTDataModule, "mnist"), "fashion_mnist": (FashionMNISTDataModule, "fashion-mnist")}


def _tree_state(root) -> list[tuple[str, int, float]]:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def idx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tv_cache")


@pytest.mark.parametrize("name", sorted(IDX))
def test_idx_datamodule_offline_shapes_splits_determinism(name, shared_data, idx_cache):
    cls, sub = IDX[name]
    before = _tree_state(shared_data / sub)
    dm = cls(
        local_dir=str(shared_data / sub),
        cache_dir=str(idx_cache),
        download=False,
        mean=[0.5],
        std=[0.25],
        batch_size=128,
    )
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.data_train), len(dm.data_test)) == (60000 - len(dm.data_val), 10000)
    assert abs(len(dm.data_val) - 5000) <= 10  # stratified: per-class floors
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (128,) and y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) <= 9
    xb, yb = dm.on_after_batch_transfer((x, y), 0)
    assert xb.dtype == torch.float32
    torch.testing.assert_close(xb, (x.float() / 255 - 0.5) / 0.25)
    torch.testing.assert_close(dm.on_after_batch_transfer(x, 0), xb)  # images alone (predict)
    assert dm.classes == cls.class_names and len(dm.classes) == 10
    # the real test set: the official label counts of the shared README
    counts = torch.bincount(dm.data_test.labels, minlength=10).tolist()
    if name == "mnist":
        assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    else:
        assert counts == [1000] * 10
    # same seed -> same split; another seed -> another split
    again = cls(local_dir=str(shared_data / sub), cache_dir=str(idx_cache), download=False)
    again.setup("fit")
    assert torch.equal(again.data_val.images, dm.data_val.images)
    other = cls(local_dir=str(shared_data / sub), cache_dir=str(idx_cache), download=False, seed=7)
    other.setup("fit")
    assert not torch.equal(other.data_val.images, dm.data_val.images)
    # the read-only data dir is untouched; derived files went to the cache
    assert _tree_state(shared_data / sub) == before
    assert len(list(idx_cache.rglob("train-images-idx3-ubyte"))) >= 1


def test_mnist_missing_files_error_names_files_and_folder(tmp_path):
    dm = MNISTDataModule(
        local_dir=str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "cache"), download=False
    )
    with pytest.raises(ConfigError) as err:
        dm.setup()
    msg = str(err.value)
    for text in (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "t10k-labels-idx1-ubyte.gz",
        str(tmp_path / "nowhere"),
        "paths.data_dir",
        "https://",
    ):
        assert text in msg


def test_mnist_no_network_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    dm = FashionMNISTDataModule(local_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), download=True)
    with pytest.raises(ConfigError, match="(?s)not downloadable.*train-images-idx3-ubyte.gz.*no network"):
        dm.setup()


def test_corrupt_local_gz_is_not_used(tmp_path, caplog):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"not the real file")
    dm = MNISTDataModule(local_dir=str(tmp_path / "mnist"), cache_dir=str(tmp_path / "cache"), download=False)
    with pytest.raises(ConfigError):
        dm.setup()
    assert "train-images-idx3-ubyte.gz" in caplog.text and "md5" in caplog.text


def test_cifar10_missing_error_names_archive_url_and_md5(tmp_path):
    dm = CIFAR10DataModule(
        local_dir=str(tmp_path / "cifar10"), cache_dir=str(tmp_path / "cache"), download=False
    )
    with pytest.raises(ConfigError) as err:
        dm.setup()
    for text in ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cs.toronto.edu", "cifar10"):
        assert text in str(err.value)


def test_cifar10_shapes_splits_and_augmentation(tmp_path, monkeypatch):
    # The full CIFAR-10 is not in ../shared/data: feed the DataModule a synthetic set of the same layout.
    g = torch.Generator().manual_seed(0)
    fake = {
        "train": (
            torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.arange(1000) % 10,
        ),
        "test": (
            torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.arange(200) % 10,
        ),
    }
    monkeypatch.setattr("bigmodel.data.vision.load_cifar10", lambda *a, **k: fake)
    crop = {"_target_": "torchvision.transforms.v2.RandomCrop", "size": 32, "padding": 4}
    dm = CIFAR10DataModule(
        local_dir="x", cache_dir="y", val_size=100, batch_size=50, train_transforms=[crop], num_workers=0
    )
    dm.setup()
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (900, 100, 200)
    assert torch.bincount(dm.data_val.labels).tolist() == [10] * 10
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    torch.manual_seed(0)
    a = dm.data_train[0][0]
    assert a.shape == (3, 32, 32) and not torch.equal(a, dm.data_train.images[0])  # augmented
    assert torch.equal(dm.data_test[0][0], fake["test"][0][0])  # eval: no augmentation


def test_num_workers_auto(tmp_path):
    flip = [{"_target_": "torchvision.transforms.v2.RandomHorizontalFlip"}]
    plain = MNISTDataModule(local_dir="x", cache_dir="y", num_workers="auto")
    assert plain.num_workers == 0  # in-memory tensors and no per-sample work
    aug = MNISTDataModule(local_dir="x", cache_dir="y", num_workers="auto", train_transforms=flip)
    assert aug.num_workers == max(0, min(8, (os.cpu_count() or 1) - 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_channels": 3}, "1x28x28"),
        ({"num_classes": 5}, "10 classes"),
        ({"mean": [0.1, 0.2]}, "one value per channel"),
        ({"val_size": 0}, None),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match, shared_data, tmp_path):
    if match is None:
        dm = MNISTDataModule(local_dir=str(shared_data / "mnist"), cache_dir=str(tmp_path), **kwargs)
        with pytest.raises(ConfigError, match="data.val_size"):
            dm.setup()
        return
    with pytest.raises(ConfigError, match=match):
        MNISTDataModule(local_dir="x", cache_dir="y", **kwargs)


def test_build_transforms_from_configs_and_errors():
    assert build_transforms([]) is None and build_transforms(None) is None
    t = build_transforms([{"_target_": "torchvision.transforms.v2.RandomHorizontalFlip", "p": 1.0}])
    x = torch.arange(12, dtype=torch.uint8).view(1, 3, 4)
    assert torch.equal(t(x), x.flip(-1))
    with pytest.raises(ConfigError, match="not callable"):
        build_transforms([42])


def test_image_folder_on_cifar10_subset(shared_data):
    kw = dict(
        root=str(shared_data / "cifar10-subset"), num_classes=10, in_channels=3, image_size=32, batch_size=32
    )
    dm = ImageFolderDataModule(**kw, num_workers=0)
    dm.setup()
    assert dm.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (1600, 200, 200)
    assert torch.bincount(dm.data_val.labels).tolist() == [20] * 10  # stratified
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    same = ImageFolderDataModule(**kw)
    same.setup()
    assert same.split_files["test"][0] == dm.split_files["test"][0]
    other = ImageFolderDataModule(**kw, seed=1)
    other.setup()
    assert other.split_files["test"][0] != dm.split_files["test"][0]
