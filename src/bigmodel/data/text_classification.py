"""Sentence classification from TSV/CSV tables.

- ``TextClassificationDataModule`` (``data=text_classification``): any table with a text and a label
  column (by header name, or 0-based index when there is no header), e.g. ``sms-spam/SMSSpamCollection``
  (Almeida et al. 2011, https://archive.ics.uci.edu/dataset/228).
- ``SST2DataModule`` (``data=sst2``): GLUE SST-2 (Socher et al. 2013; Wang et al. 2019,
  https://gluebenchmark.com/tasks), ``<data_dir>/sst2/{train,dev}.tsv``; dev is used for val and test.

TSV tables are read with quoting off (texts contain ``"``), comma tables with standard CSV quoting
(``data.quoting``), and each text is stripped. Texts are tokenized
per batch, so a tokenizer restored from a checkpoint replaces the rebuilt one without re-reading files.
Batches are ``(x, y)``: ``x`` ``(B, T)`` int64 token ids, right-padded with the tokenizer's ``pad_id``
(0 for our BPE and for BERT-family tokenizers), ``T <= max_length``; ``y`` ``(B,)`` int64 class ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from bigmodel.data.base import BaseDataModule
from bigmodel.data.download import fetch
from bigmodel.data.splits import carve_missing_splits
from bigmodel.data.text_io import read_table
from bigmodel.tokenizers import Tokenizer, cached_tokenizer, save_in_run_dir, tokenizer_from_dict
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import minilm_path

log = logging.getLogger(__name__)


class TextDataset(torch.utils.data.Dataset):
    """``(text, label id)`` pairs; tokenized in the DataModule's collate."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int]) -> None:
        self.texts, self.labels = list(texts), list(labels)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.labels[i]


class TextClassificationDataModule(BaseDataModule):
    """Text classification from one table (split by ``split_fractions``, stratified) or separate
    train/val/test tables.

    Args:
        train_file: the training table; ``val_file``/``test_file`` optional (carved from train if absent).
        text_column, label_column: header names, or 0-based indices when ``header`` is false.
        delimiter: one character, or ``comma|tab|semicolon|pipe|space`` (a Hydra override cannot spell
            ``,``: write ``data.delimiter=comma``).
        quoting: ``auto`` (standard CSV quoting for comma tables, off for TSV), ``csv`` or ``none``.
        header: the first line is a header.
        classes: label values in class-id order (null: sorted distinct training labels).
        class_names: display names for ``classes`` (e.g. ``[negative, positive]``); null = the values.
        num_classes: K, must equal the number of classes; nets read ``${data.num_classes}``.
        tokenizer: ``{kind: bpe, vocab_size: N}`` (trained on the training texts, cached) or
            ``{kind: hf, path: <folder with tokenizer.json>}`` (a pretrained model's own; null path =
            the bundled all-MiniLM-L6-v2).
        vocab_size: embedding rows of a from-scratch net (``${data.vocab_size}``), >= the tokenizer's size.
        max_length: truncate to this many tokens.
        max_train_samples: use a seeded random subset of the training rows (null: all).
        split_fractions: train/val/test fractions for the parts not given as files.
        cache_dir: where the trained tokenizer is cached.

    Raises:
        ConfigError: bad rows (see :func:`read_table`), ``num_classes`` not matching the data, a label in
            val/test unknown to train, or a tokenizer larger than ``vocab_size``.
    """

    def __init__(
        self,
        train_file: str,
        text_column: str | int = "sentence",
        label_column: str | int = "label",
        val_file: str | None = None,
        test_file: str | None = None,
        delimiter: str = "\t",
        quoting: str = "auto",
        header: bool = True,
        classes: list[str] | None = None,
        class_names: list[str] | None = None,
        num_classes: int | None = None,
        tokenizer: dict[str, Any] | None = None,
        vocab_size: int | None = None,
        max_length: int = 64,
        max_train_samples: int | None = None,
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
        cache_dir: str = ".cache",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.text_column, self.label_column = text_column, label_column
        self.delimiter, self.quoting, self.header = delimiter, quoting, header
        self.label_values = [str(c) for c in classes] if classes else None
        self.class_names = class_names
        self.num_classes = num_classes
        self.tokenizer_cfg = dict(tokenizer or {"kind": "bpe", "vocab_size": 8192})
        self.vocab_size, self.max_length = vocab_size, max_length
        self.max_train_samples = max_train_samples
        self.split_fractions = list(split_fractions)
        self.cache_root = Path(cache_dir)
        self.tokenizer: Tokenizer | None = None
        self.classes: list[str] | None = None

    def _read(self, split: str) -> tuple[list[str], list[str]] | None:
        f = self.files[split]
        return (
            read_table(f, self.text_column, self.label_column, self.delimiter, self.header, self.quoting)
            if f
            else None
        )

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        tables = {s: self._read(s) for s in ("train", "val", "test")}
        texts, labels = tables["train"]
        values = self.label_values or sorted(set(labels))
        index = {v: i for i, v in enumerate(values)}
        self.check_num_classes(values, str(self.files["train"]))
        self.classes = list(self.class_names or values)

        def ids(split: str, labs: list[str]) -> list[int]:
            unknown = sorted(set(labs) - set(index))
            if unknown:
                raise ConfigError(f"{self.files[split]} has labels {unknown} not among the classes {values}.")
            return [index[v] for v in labs]

        y = np.asarray(ids("train", labels))
        missing = [s for s in ("val", "test") if tables[s] is None]
        parts = carve_missing_splits(y, missing, self.split_fractions, self.seed)
        splits = {s: TextDataset([texts[i] for i in idx], y[idx].tolist()) for s, idx in parts.items()}
        for s in ("val", "test"):
            if tables[s] is not None:
                splits[s] = TextDataset(tables[s][0], ids(s, tables[s][1]))
        if self.max_train_samples and self.max_train_samples < len(splits["train"]):
            keep = np.sort(
                np.random.default_rng(self.seed).permutation(len(splits["train"]))[: self.max_train_samples]
            )
            tr = splits["train"]
            splits["train"] = TextDataset([tr.texts[i] for i in keep], [tr.labels[i] for i in keep])
        self.data_train, self.data_val, self.data_test = splits["train"], splits["val"], splits["test"]
        self._set_tokenizer(self._build_tokenizer(self.data_train.texts))
        save_in_run_dir(self.tokenizer, self.trainer)
        self.apply_few_labels()
        self.check_batch_size()
        log.info(
            "%s: %d train / %d val / %d test texts, %d classes, vocab %d", type(self).__name__,
            len(self.data_train), len(self.data_val), len(self.data_test), self.num_classes, self.tokenizer.vocab_size,
        )  # fmt: skip

    def _build_tokenizer(self, texts: list[str]) -> Tokenizer:
        cfg = self.tokenizer_cfg
        if cfg.get("kind") == "hf" and not cfg.get("path"):
            # a pretrained model's own tokenizer; null path = the bundled MiniLM (as ${minilm_path:} in configs)
            cfg = {**cfg, "path": minilm_path()}
        key = hashlib.sha256(json.dumps([cfg, len(texts), texts[:50], texts[-50:]], sort_keys=True).encode())
        return cached_tokenizer(
            cfg,
            lambda: texts,
            self.cache_root / "text_cls" / f"tokenizer_{key.hexdigest()[:16]}.json",
            default_kind="bpe",
        )

    def _set_tokenizer(self, tok: Tokenizer) -> None:
        if self.vocab_size is not None and tok.vocab_size > self.vocab_size:
            raise ConfigError(
                f"The tokenizer has {tok.vocab_size} ids but data.vocab_size={self.vocab_size} (the net's "
                "embedding rows); raise data.vocab_size or lower data.tokenizer.vocab_size."
            )
        if hasattr(tok, "tok"):  # HF tokenizers: truncate there, so [SEP]-style end tokens are kept
            tok.tok.no_padding()
            tok.tok.enable_truncation(self.max_length)
        self.tokenizer = tok

    def collate(self, batch: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and right-pad: ``x`` ``(B, T)`` int64, ``y`` ``(B,)`` int64."""
        texts, labels = zip(*batch, strict=True)
        pad = self.tokenizer.pad_id
        seqs = [
            torch.tensor(s[: self.max_length] or [pad], dtype=torch.long)
            for s in self.tokenizer.encode_batch(texts)
        ]
        x = pad_sequence(seqs, batch_first=True, padding_value=pad)
        return x, torch.tensor(labels, dtype=torch.long)

    def _loader(self, dataset: Any, train: bool, **kwargs: Any) -> DataLoader:
        return super()._loader(dataset, train, collate_fn=self.collate, **kwargs)

    # The tokenizer travels in the checkpoint (Lightning stores DataModule state), so eval tokenizes
    # exactly as training did.
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.tokenizer:
            state.update(tokenizer=self.tokenizer.to_dict(), classes=self.classes)
        return state

    def load_unlabeled_root(self, root: Path) -> TextDataset:
        """Unlabelled texts: one per non-empty line of ``root`` (a file), or of every file under it."""
        from bigmodel.data.semi import read_unlabeled_lines

        lines = read_unlabeled_lines(root)
        return TextDataset(lines, [-1] * len(lines))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("tokenizer"):
            self._set_tokenizer(tokenizer_from_dict(state["tokenizer"]))


class SST2DataModule(TextClassificationDataModule):
    """GLUE SST-2 binary sentiment: 67,349 train phrases, 872 dev sentences (used for val and test).

    Reads ``<data_dir>/sst2/{train,dev}.tsv``; without them, downloads the GLUE archive :attr:`URL` into
    ``<cache_dir>/sst2/`` (checked by the row counts, as GLUE publishes no checksum).

    Raises:
        ConfigError: no local files and no network (naming URL and expected paths), or bad rows.
    """

    URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
    ROWS = {"train": 67_349, "dev": 872}

    def __init__(self, data_dir: str = "data", download: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("class_names", ["negative", "positive"])
        kwargs.setdefault("classes", ["0", "1"])
        super().__init__(train_file="", text_column="sentence", label_column="label", **kwargs)
        self.data_dir, self.download = Path(data_dir), download

    def _locate(self) -> Path:
        local = self.data_dir / "sst2"
        if (local / "train.tsv").is_file() and (local / "dev.tsv").is_file():
            return local
        cached = self.cache_root / "sst2" / "SST-2"
        if not (cached / "dev.tsv").is_file():
            if not self.download:
                raise ConfigError(f"SST-2 not found at {local}/{{train,dev}}.tsv and data.download=false.")
            archive = fetch(self.URL, self.cache_root / "sst2" / "SST-2.zip", None, local / "train.tsv")
            with zipfile.ZipFile(archive) as z:
                z.extractall(cached.parent)
        return cached

    def setup(self, stage: str | None = None) -> None:
        root = self._locate()
        self.files = {
            "train": str(root / "train.tsv"),
            "val": str(root / "dev.tsv"),
            "test": str(root / "dev.tsv"),
        }
        first = self.data_train is None
        super().setup(stage)
        if first and not self.max_train_samples and len(self.data_train) != self.ROWS["train"]:
            log.warning(
                "%s has %d rows, not SST-2's %d.",
                self.files["train"],
                len(self.data_train),
                self.ROWS["train"],
            )
