"""A DataModule set up without a run directory writes nothing into the working directory.

A Trainer built without ``default_root_dir`` falls back to the working directory; the tokenizer that
``setup`` saves for the run folder once landed there (a ``tokenizer.json`` committed at the repository
root). These tests run with the working directory set to an empty folder and check it stays empty.
"""

from __future__ import annotations

from lightning import Trainer

from bigmodel.data.text import TextFileDataModule
from bigmodel.data.text_classification import TextClassificationDataModule

CORPUS = "".join(f"Line {i}: to be or not to be.\n" for i in range(100))


def _trainer() -> Trainer:
    # no default_root_dir: Lightning uses the working directory
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")


def test_lm_setup_without_run_dir_writes_nothing_in_cwd(tmp_path, monkeypatch):
    cwd, corpus = tmp_path / "cwd", tmp_path / "corpus.txt"
    cwd.mkdir()
    corpus.write_text(CORPUS, encoding="utf-8")
    monkeypatch.chdir(cwd)
    dm = TextFileDataModule(path=str(corpus), cache_dir=str(tmp_path / "cache"), block_size=8, batch_size=2)
    dm.trainer = _trainer()
    dm.setup("fit")
    assert dm.tokenizer is not None and list((tmp_path / "cache").rglob("tokenizer_*.json"))
    assert list(cwd.iterdir()) == []


def test_text_classification_setup_without_run_dir_writes_nothing_in_cwd(tmp_path, monkeypatch):
    cwd, table = tmp_path / "cwd", tmp_path / "t.tsv"
    cwd.mkdir()
    table.write_text(
        "".join(f"{y}\tsome text number {i}\n" for i, y in enumerate([0, 1] * 20)), encoding="utf-8"
    )
    monkeypatch.chdir(cwd)
    dm = TextClassificationDataModule(
        train_file=str(table), text_column=1, label_column=0, header=False, cache_dir=str(tmp_path / "cache"),
        tokenizer={"kind": "bpe", "vocab_size": 300}, batch_size=4,
    )  # fmt: skip
    dm.trainer = _trainer()
    dm.setup("fit")
    assert list(cwd.iterdir()) == []


def test_tokenizer_goes_to_an_explicit_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    dm = TextFileDataModule(path=str(corpus), cache_dir=str(tmp_path / "cache"), block_size=8, batch_size=2)
    dm.trainer = Trainer(default_root_dir=str(tmp_path / "run"), logger=False, enable_checkpointing=False)
    dm.setup("fit")
    assert (tmp_path / "run" / "tokenizer.json").is_file()
