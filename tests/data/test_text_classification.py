"""Text-classification DataModules: table reading, bad rows, splits, batches, tokenizer state."""

from __future__ import annotations

import pytest
import torch

from bigmodel.data.text_classification import SST2DataModule, TextClassificationDataModule
from bigmodel.data.text_io import read_table
from bigmodel.utils.errors import ConfigError

ROWS = [
    ("a gripping , funny film .", 1),
    ('"dull" and far too long', 0),
    ("it 's a mess", 0),
    ("lovely", 1),
] * 10


def write_tsv(path, rows, header="sentence\tlabel"):
    path.write_text(header + "\n" + "".join(f"{t} \t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def test_read_table_quoting_off_and_strip(tmp_path):
    texts, labels = read_table(write_tsv(tmp_path / "t.tsv", ROWS[:2]), "sentence", "label")
    assert texts == ["a gripping , funny film .", '"dull" and far too long'] and labels == ["1", "0"]


@pytest.mark.parametrize(
    ("line", "what"), [("no label here\t", "label"), ("only text", "label"), ("\t1", "text")]
)
def test_row_with_missing_label_or_text_names_the_line(tmp_path, line, what):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\n\n" + line + "\nbad\t0\n")
    with pytest.raises(ConfigError, match=rf"train\.tsv:4: row has no {what}"):
        read_table(path, "sentence", "label")


def test_unknown_column(tmp_path):
    with pytest.raises(ConfigError, match=r"no column 'text'"):
        read_table(write_tsv(tmp_path / "t.tsv", ROWS), "text", "label")


def make_dm(tmp_path, **kw):
    kw = {
        "train_file": str(write_tsv(tmp_path / "train.tsv", ROWS)),
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "vocab_size": 300,
        "max_length": 6,
        "batch_size": 8,
        "cache_dir": str(tmp_path / "cache"),
        **kw,
    }
    return TextClassificationDataModule(**kw)


def test_split_batches_and_tokenizer_state(tmp_path):
    dm = make_dm(tmp_path, class_names=["neg", "pos"])
    dm.setup()
    assert [len(d) for d in (dm.data_train, dm.data_val, dm.data_test)] == [32, 4, 4]
    assert dm.classes == ["neg", "pos"] and dm.num_classes == 2
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.long and x.shape[0] == 4 and x.shape[1] <= 6 and y.dtype == torch.long
    lengths = (x != dm.tokenizer.pad_id).sum(1)
    assert (x[torch.arange(4), lengths - 1] != dm.tokenizer.pad_id).all()  # right-padded
    state = dm.state_dict()
    other = make_dm(tmp_path, max_length=64, tokenizer={"kind": "bpe", "vocab_size": 260})
    other.setup()
    other.load_state_dict(state)
    assert other.tokenizer.encode("lovely film") == dm.tokenizer.encode("lovely film")


def test_num_classes_mismatch_and_unknown_val_label(tmp_path):
    with pytest.raises(ConfigError, match=r"num_classes=3, but .* has 2 classes"):
        make_dm(tmp_path, num_classes=3).setup()
    val = write_tsv(tmp_path / "val.tsv", [("meh", 2)])
    with pytest.raises(ConfigError, match=r"val.tsv has labels \['2'\]"):
        make_dm(tmp_path, val_file=str(val)).setup()


def test_tokenizer_larger_than_net_vocab(tmp_path):
    with pytest.raises(ConfigError, match="data.vocab_size=270"):
        make_dm(tmp_path, vocab_size=270).setup()


def test_sst2_from_shared_data(shared_data, tmp_path):
    dm = SST2DataModule(
        data_dir=str(shared_data), cache_dir=str(tmp_path), max_train_samples=2000, download=False,
        tokenizer={"kind": "bpe", "vocab_size": 1000}, vocab_size=1000,
    )  # fmt: skip
    dm.setup()
    assert len(dm.data_train) == 2000 and len(dm.data_val) == len(dm.data_test) == 872
    assert dm.classes == ["negative", "positive"]
    assert sum(dm.data_val.labels) == 444  # 444 positive dev sentences


def test_sst2_missing_without_download(tmp_path):
    with pytest.raises(ConfigError, match=r"sst2/\{train,dev\}.tsv and data.download=false"):
        SST2DataModule(data_dir=str(tmp_path), cache_dir=str(tmp_path), download=False).setup()


def test_sms_spam_from_shared_data(make_cfg, shared_data):
    import hydra

    cfg = make_cfg(["experiment=sms_spam_transformer"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    sizes = [len(d) for d in (dm.data_train, dm.data_val, dm.data_test)]
    assert sum(sizes) == 5574 and dm.classes == ["ham", "spam"]
    assert sum(dm.data_train.labels) == round(747 * 0.8) or abs(sum(dm.data_train.labels) - 598) <= 1


def test_collate_right_pads_with_the_pad_id(tmp_path):
    from bigmodel.tokenizers import CharTokenizer

    dm = TextClassificationDataModule(train_file=str(tmp_path / "unused.tsv"), max_length=4)
    dm.tokenizer = CharTokenizer(list("_abcdef"))  # pad_id 0 = "_"
    x, y = dm.collate([("abc", 1), ("abcdef", 0), ("", 1)])
    # (B, T) int64 with T = the longest (truncated to max_length); an empty text becomes one pad token
    assert x.dtype == torch.long and x.shape == (3, 4) and y.tolist() == [1, 0, 1]
    assert x.tolist() == [[1, 2, 3, 0], [1, 2, 3, 4], [0, 0, 0, 0]]
