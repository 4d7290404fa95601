"""Every DataModule logs split sizes and class counts once at setup; a text folder reads a symlinked file once."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import Subset, TensorDataset

from bigmodel.data.digits import DigitsDataModule
from bigmodel.data.images import ImageTensorDataset
from bigmodel.data.summary import labels_of, split_summary
from bigmodel.data.text import TextFileDataModule


def test_digits_logs_sizes_and_class_counts_once(caplog):
    dm = DigitsDataModule()
    with caplog.at_level(logging.INFO, logger="bigmodel.data.base"):
        dm.setup("fit")
        dm.setup("test")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bigmodel.data.base"]
    n = {k: len(getattr(dm, f"data_{k}")) for k in ("train", "val", "test")}
    assert line.startswith(
        f"DigitsDataModule: train {n['train']} / val {n['val']} / test {n['test']}; 10 classes"
    )
    counts = [c.split(" ")[1] for c in line.split(": ", 2)[2].split(", ")]
    assert sum(int(c.split("/")[0]) for c in counts) == n["train"]


def test_labels_of_each_dataset_kind():
    y = torch.tensor([0, 1, 1, 2])
    assert labels_of(TensorDataset(torch.zeros(4, 2), y)) == [0, 1, 1, 2]
    assert labels_of(Subset(TensorDataset(torch.zeros(4, 2), y), [1, 3])) == [1, 2]
    assert labels_of(ImageTensorDataset(torch.zeros(4, 1, 2, 2), y)) == [0, 1, 1, 2]
    assert labels_of(TensorDataset(torch.zeros(4, 8, dtype=torch.long))) is None  # token windows: no classes
    s = split_summary({"train": TensorDataset(torch.zeros(4, 2), y), "val": None}, ["a", "b", "c"])
    assert s == "train 4; 3 classes (train): a 1, b 2, c 1"


def test_text_folder_reads_a_symlinked_file_once(tmp_path, caplog):
    (tmp_path / "a.txt").write_text("hello world\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("other text\n")
    (tmp_path / "same_as_a.txt").symlink_to(tmp_path / "a.txt")
    dm = TextFileDataModule(path=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="bigmodel.data.text"):
        files = dm.corpus_files()
    assert [f.name for f in files] == ["a.txt", "b.txt"]
    assert any("same_as_a.txt is the same file as a.txt" in r.getMessage() for r in caplog.records)
