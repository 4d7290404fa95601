"""The shared folder scanner and bad-file policy used by every *_folder DataModule."""

import logging
from pathlib import Path

import pytest

from bigmodel.data.folders import BadFileError, BadFileHandler, scan_folder_splits
from bigmodel.utils.errors import ConfigError


def _touch(root: Path, cls: str, n: int, ext: str = "png") -> None:
    (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / cls / f"{i:03d}.{ext}").write_bytes(b"x")


def test_ratio_split_is_stratified_and_ignores_other_files(tmp_path):
    _touch(tmp_path, "cat", 20)
    _touch(tmp_path, "dog", 10)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    splits, classes = scan_folder_splits(tmp_path, ["png"], (0.8, 0.1, 0.1), seed=0)
    assert classes == ["cat", "dog"]
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [24, 3, 3]
    assert sorted(splits["val"][1]) == [0, 0, 1]
    assert all(p.suffix == ".png" for s in splits.values() for p in s[0])
    again, _ = scan_folder_splits(tmp_path, ["png"], (0.8, 0.1, 0.1), seed=0)
    assert again["test"][0] == splits["test"][0]


def test_split_folders_keep_label_ids(tmp_path):
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        _touch(tmp_path / split, "a", n)
        _touch(tmp_path / split, "b", n)
    splits, classes = scan_folder_splits(tmp_path, ["png"])
    assert classes == ["a", "b"] and len(splits["train"][0]) == 8 and len(splits["val"][0]) == 4


def test_val_class_missing_from_train(tmp_path):
    _touch(tmp_path / "train", "a", 3)
    _touch(tmp_path / "train", "b", 3)
    _touch(tmp_path / "val", "c", 1)
    with pytest.raises(ConfigError, match=r"class folder\(s\) \['c'\] that the training split lacks"):
        scan_folder_splits(tmp_path, ["png"])


def test_one_class_and_empty_class(tmp_path):
    _touch(tmp_path, "a", 5)
    with pytest.raises(ConfigError, match="needs at least two"):
        scan_folder_splits(tmp_path, ["png"])
    (tmp_path / "b").mkdir()
    _touch(tmp_path, "c", 5)
    with pytest.raises(ConfigError, match="holds no"):
        scan_folder_splits(tmp_path, ["png"])
    splits, classes = scan_folder_splits(tmp_path, ["png"], drop_empty_classes=True)
    assert classes == ["a", "c"]


def test_bad_file_policy(tmp_path, caplog):
    warn = BadFileHandler("warn")
    with caplog.at_level(logging.WARNING):
        warn(tmp_path / "x.png", "truncated")
        warn(tmp_path / "x.png", "truncated")
        warn.summary("images")
    assert caplog.text.count("x.png") == 1 and "Skipped 1 bad images" in caplog.text
    with pytest.raises(BadFileError, match=r"x.png: truncated.*on_bad_file=warn"):
        BadFileHandler("error")(tmp_path / "x.png", "truncated")
    with pytest.raises(ConfigError, match="on_bad_file"):
        BadFileHandler("ignore")


def test_empty_class_folder_in_val_is_named(tmp_path, caplog):
    for split in ("train", "val"):
        _touch(tmp_path / split, "a", 3)
        _touch(tmp_path / split, "b", 3 if split == "train" else 0)
    with caplog.at_level(logging.WARNING, logger="bigmodel.data.folders"):
        splits, classes = scan_folder_splits(tmp_path, ["png"])
    assert classes == ["a", "b"] and len(splits["val"][0]) == 3
    assert str(tmp_path / "val" / "b") in caplog.text
    with pytest.raises(ConfigError, match=str(tmp_path / "val" / "b")):
        scan_folder_splits(tmp_path, ["png"], on_bad_file="error")
