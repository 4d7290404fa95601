"""Every bad input of an image folder (issue #3): each has its own test."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bigmodel.data.folders import BadFileError
from bigmodel.data.images import load_image
from bigmodel.data.vision import ImageFolderDataModule
from bigmodel.utils.errors import ConfigError


def _img(path: Path, mode: str = "RGB", size: int = 12, value: int = 100, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    if mode == "P":
        im = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).convert("P")
    elif mode == "RGBA":
        im = Image.fromarray(rng.integers(0, 255, (size, size, 4), dtype=np.uint8), "RGBA")
    elif mode == "L":
        im = Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), "L")
    else:
        im = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB")
    im.save(path, format=fmt)
    return path


def _folder(root: Path, classes=("cat", "dog"), n: int = 10, ext: str = "png") -> Path:
    for c in classes:
        for i in range(n):
            _img(root / c / f"{i:03d}.{ext}", value=i)
    return root


def _dm(root: Path, **kw) -> ImageFolderDataModule:
    kw = {"num_classes": 2, "in_channels": 3, "image_size": 8, "batch_size": 4, "num_workers": 0, **kw}
    return ImageFolderDataModule(root=str(root), **kw)


@pytest.mark.parametrize("preload", [True, False])
def test_grayscale_rgba_palette_are_converted_to_rgb(tmp_path, preload):
    root = _folder(tmp_path / "d")
    gray = _img(root / "cat" / "gray.png", "L")
    rgba = _img(root / "dog" / "rgba.png", "RGBA")
    pal = _img(root / "dog" / "palette.png", "P")
    bmp = _img(root / "cat" / "gray.bmp", "L")
    assert Image.open(pal).mode == "P" and Image.open(rgba).mode == "RGBA"
    for p in (gray, rgba, pal, bmp):
        x = load_image(p, "RGB", 8)
        assert x.shape == (3, 8, 8) and x.dtype == torch.uint8
    g = load_image(gray, "RGB", 12)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])  # gray replicated into R, G and B
    dm = _dm(root, preload=preload, split_fractions=[0.5, 0.25, 0.25])
    dm.setup()
    n = sum(len(s) for s in (dm.data_train, dm.data_val, dm.data_test))
    assert n == 24  # 20 + the 4 converted images, none skipped
    for ds in (dm.data_train, dm.data_val, dm.data_test):
        for i in range(len(ds)):
            assert ds[i][0].shape == (3, 8, 8)


def test_grayscale_folder_mode(tmp_path):
    root = _folder(tmp_path / "d")
    _img(root / "cat" / "rgba.png", "RGBA")
    dm = _dm(root, in_channels=1, mean=[0.5], std=[0.5])
    dm.setup()
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 8, 8)


@pytest.mark.parametrize("preload", [True, False])
@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
def test_bad_image_skipped_with_warning_naming_it(tmp_path, caplog, kind, preload):
    root = _folder(tmp_path / "d", ext="jpg")
    bad = root / "dog" / "bad.jpg"
    if kind == "truncated":
        good = (root / "dog" / "000.jpg").read_bytes()
        _img(bad, size=64, fmt="JPEG")
        bad.write_bytes(bad.read_bytes()[: len(good) // 2])
    else:
        bad.write_bytes(b"this is not an image")
    dm = _dm(root, preload=preload, split_fractions=[1 / 3, 1 / 3, 1 / 3])
    with caplog.at_level(logging.WARNING):
        dm.setup()
        for ds in (dm.data_train, dm.data_val, dm.data_test):
            for i in range(len(ds)):
                x, _ = ds[i]
                assert x.shape == (3, 8, 8)
    assert str(bad) in caplog.text
    assert str(bad) in dm.bad_files.skipped and len(dm.bad_files.skipped) == 1
    if preload:
        assert sum(len(s) for s in (dm.data_train, dm.data_val, dm.data_test)) == 20
        assert "Skipped 1 bad images" in caplog.text


@pytest.mark.parametrize("preload", [True, False])
def test_bad_image_is_an_error_naming_it_under_on_bad_file_error(tmp_path, preload):
    root = _folder(tmp_path / "d")
    bad = root / "cat" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = _dm(root, preload=preload, on_bad_file="error", split_fractions=[1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(BadFileError, match="broken.png"):
        dm.setup()
        for ds in (dm.data_train, dm.data_val, dm.data_test):
            for i in range(len(ds)):
                ds[i]


def test_empty_class_folder_is_an_error(tmp_path):
    root = _folder(tmp_path / "d")
    (root / "bird").mkdir()
    with pytest.raises(ConfigError, match="(?s)bird.*drop_empty_classes"):
        _dm(root).setup()


def test_empty_class_dropped_with_warning_ids_stable_across_splits(tmp_path, caplog):
    root = tmp_path / "d"
    for split in ("train", "val", "test"):
        _folder(root / split, classes=("ant", "cat", "dog"), n=4)
    (root / "train" / "bee").mkdir()
    dm = _dm(root, num_classes=3, drop_empty_classes=True)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert "bee" in caplog.text
    assert dm.classes == ["ant", "cat", "dog"]
    for split in ("train", "val", "test"):
        paths, labels = dm.split_files[split]
        assert all(dm.classes[y] == p.parent.name for p, y in zip(paths, labels, strict=True))
        assert len(paths) == 12


def test_one_class_is_an_error(tmp_path):
    root = _folder(tmp_path / "d", classes=("cat",))
    with pytest.raises(ConfigError, match="at least two"):
        _dm(root).setup()


def test_non_image_files_are_ignored(tmp_path):
    root = _folder(tmp_path / "d")
    (root / "cat" / "notes.txt").write_text("hello")
    (root / "dog" / "labels.csv").write_text("a,b")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "README.md").write_text("top-level file, not a class")
    _img(root / "cat" / "upper.PNG")  # extensions match case-insensitively
    dm = _dm(root)
    dm.setup()
    all_files = [p for s in dm.split_files.values() for p in s[0]]
    assert len(all_files) == 21 and all(p.suffix.lower() == ".png" for p in all_files)
    assert not dm.bad_files.skipped


def test_class_in_val_absent_from_train_is_an_error(tmp_path):
    root = tmp_path / "d"
    _folder(root / "train")
    _folder(root / "val", classes=("cat", "dog", "emu"))
    with pytest.raises(ConfigError, match="(?s)emu.*training split lacks"):
        _dm(root).setup()


def test_given_splits_are_used_as_is(tmp_path):
    root = tmp_path / "d"
    _folder(root / "train", n=6)
    _folder(root / "val", n=2)
    _folder(root / "test", n=3)
    dm = _dm(root)
    dm.setup()
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (12, 4, 6)


def test_num_classes_mismatch_is_an_error(tmp_path):
    root = _folder(tmp_path / "d")
    with pytest.raises(ConfigError, match="data.num_classes=2"):
        _dm(root, num_classes=5).setup()


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        _dm(tmp_path / "nope").setup()


def test_data_dir_is_never_written(tmp_path):
    root = _folder(tmp_path / "d")
    root.chmod(0o555)
    try:
        before = sorted(p.name for p in root.rglob("*"))
        dm = _dm(root)
        dm.setup()
        assert sorted(p.name for p in root.rglob("*")) == before
    finally:
        root.chmod(0o755)
