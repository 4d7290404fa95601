"""Language-modelling DataModules: memmap encoding, window sampling, bad corpora."""

from __future__ import annotations

import logging
import urllib.request

import numpy as np
import pytest

from bigmodel.data.folders import BadFileError
from bigmodel.data.text import ShakespeareDataModule, TextFileDataModule
from bigmodel.tokenizers import CharTokenizer
from bigmodel.utils.errors import ConfigError

CORPUS = "".join(f"Line {i}: to be or not to be, that is the question.\n" for i in range(200))


def make_dm(tmp_path, text: str | bytes = CORPUS, **kw) -> TextFileDataModule:
    path = tmp_path / "corpus" / "a.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    kw = {"block_size": 16, "batch_size": 4, "tokenizer": {"kind": "char"}, **kw}
    return TextFileDataModule(path=str(tmp_path / "corpus"), cache_dir=str(tmp_path / "cache"), **kw)


def test_memmap_windows_are_shifted_slices_of_the_corpus(tmp_path):
    dm = make_dm(tmp_path, val_windows=10)
    dm.setup("fit")
    assert isinstance(dm.tokens, np.memmap)
    assert list((tmp_path / "cache").rglob("tokens_*.bin"))  # cached outside the data folder
    assert not [p for p in (tmp_path / "corpus").iterdir() if p.name != "a.txt"]
    tok = dm.tokenizer
    assert dm.vocab_size == len(set(CORPUS)) and len(dm.tokens) == len(CORPUS)
    n_train = len(CORPUS) - int(len(CORPUS) * 0.1)
    x, y = dm.data_train[123]
    assert x.shape == y.shape == (16,) and x.dtype.is_floating_point is False
    assert tok.decode(x.tolist()) == CORPUS[123:139] and tok.decode(y.tolist()) == CORPUS[124:140]
    assert len(dm.data_train) == n_train - 16  # every start whose window stays inside train
    # val windows: evenly spaced, all inside the last 10%
    assert len(dm.data_val) == 10 and dm.data_val.starts[-1] == len(CORPUS) - n_train - 17
    xv, _ = dm.data_val[9]
    assert tok.decode(xv.tolist()) == CORPUS[n_train + dm.data_val.starts[-1] :][:16]
    # random windows, batched
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (4, 16) and (xb[:, 1:] == yb[:, :-1]).all()


def test_second_setup_reuses_the_cache(tmp_path, monkeypatch):
    first = make_dm(tmp_path)
    first.setup()
    dm = TextFileDataModule(path=str(first.path), cache_dir=str(tmp_path / "cache"), block_size=16)
    monkeypatch.setattr(dm, "_texts", lambda files: pytest.fail("corpus re-read although cached"))
    dm.setup()
    assert len(dm.tokens) == len(CORPUS)


def test_checkpoint_tokenizer_replaces_a_rebuilt_one(tmp_path):
    dm = make_dm(tmp_path)
    dm.setup()
    wider = CharTokenizer(["#", *dm.tokenizer.chars])  # same chars, shifted ids
    dm.load_state_dict({"tokenizer": wider.to_dict()})
    assert dm.tokenizer.chars[0] == "#" and int(dm.tokens[0]) == wider.encode(CORPUS[0])[0]


def test_non_utf8_byte_is_replaced_with_a_warning_naming_file_and_offset(tmp_path, caplog):
    bad = CORPUS.encode()[:100] + b"\xff" + CORPUS.encode()[100:]
    dm = make_dm(tmp_path, bad)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    msgs = [r.getMessage() for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(msgs) == 1 and "a.txt" in msgs[0] and "byte offset 100" in msgs[0]
    assert "\ufffd" in dm.tokenizer.chars


def test_non_utf8_byte_raises_under_strict_mode(tmp_path):
    bad = CORPUS.encode()[:100] + b"\xc3\x28" + CORPUS.encode()[100:]
    with pytest.raises(BadFileError, match=r"a\.txt is not valid UTF-8 at byte offset 100"):
        make_dm(tmp_path, bad, on_bad_file="error").setup()


@pytest.mark.parametrize("text", ["", " \n\t\n  \n"])
def test_empty_or_whitespace_corpus_is_an_error(tmp_path, text):
    with pytest.raises(ConfigError, match="empty or whitespace only"):
        make_dm(tmp_path, text).setup()


def test_corpus_shorter_than_block_size_names_both_numbers(tmp_path):
    with pytest.raises(ConfigError, match=r"val split has 10 tokens, fewer than data.block_size \+ 1 = 17"):
        make_dm(tmp_path, "x" * 100).setup()


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TextFileDataModule(path=str(tmp_path / "nope"), cache_dir=str(tmp_path)).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no files"):
        TextFileDataModule(path=str(tmp_path / "empty"), cache_dir=str(tmp_path)).setup()


def test_bpe_corpus_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "b.md").write_text(CORPUS.upper())
    dm = make_dm(tmp_path, tokenizer={"kind": "bpe", "vocab_size": 320}, extensions=["txt", "md"])
    dm.setup()
    assert 256 < dm.vocab_size <= 320 and len(dm.tokens) < len(CORPUS)  # 2 files, > 2 bytes per token
    assert dm.tokenizer.decode(dm.tokens.tolist()) == CORPUS + CORPUS.upper()  # files in sorted order
    assert dm.state_dict()["tokenizer"]["kind"] == "bpe"


def test_shakespeare_from_shared_data(shared_data, tmp_path):
    dm = ShakespeareDataModule(
        data_dir=str(shared_data), cache_dir=str(tmp_path), block_size=64, download=False
    )
    dm.setup()
    assert dm.vocab_size == 65 and len(dm.tokens) == 1_115_394
    assert len(dm.data_train) == 1_115_394 - 111_539 - 64
    assert dm.tokenizer.decode(dm.data_train[0][0].tolist()).startswith("First Citizen:")


def test_shakespeare_without_file_or_network_names_url_path_and_checksum(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dm = ShakespeareDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError) as e:
        dm.setup()
    msg = str(e.value)
    assert ShakespeareDataModule.URL in msg and ShakespeareDataModule.SHA256 in msg
    assert str(tmp_path / "data" / "tinyshakespeare" / "input.txt") in msg
