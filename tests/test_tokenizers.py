"""Tokenizers: round trips, serialisation, bad input."""

from __future__ import annotations

import pytest

from bigmodel.tokenizers import (
    CharTokenizer,
    HFTokenizer,
    build_tokenizer,
    iter_chunks,
    save_tokenizer,
    tokenizer_digest,
    tokenizer_from_dict,
)
from bigmodel.utils.errors import ConfigError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


def test_char_round_trip_and_vocab():
    tok = CharTokenizer.train([TEXT])
    assert tok.chars == sorted(set(TEXT))
    ids = tok.encode("hear me speak")
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == "hear me speak"
    again = tokenizer_from_dict(tok.to_dict())
    assert again.encode(TEXT) == tok.encode(TEXT)


def test_char_unknown_characters_are_listed():
    tok = CharTokenizer.train(["abc"])
    with pytest.raises(ConfigError, match=r"2 character\(s\).*\['x', 'é'\]"):
        tok.encode("abxé")


def test_bpe_round_trip_compresses_and_serialises(tmp_path):
    tok = HFTokenizer.train_bpe(iter_chunks(TEXT, 100), vocab_size=300)
    assert tok.pad_id == 0 and 256 < tok.vocab_size <= 300
    ids = tok.encode(TEXT)
    assert len(ids) < len(TEXT) / 2  # merges learned on a repetitive text
    assert tok.decode(ids) == TEXT
    odd = "naïve café – 日本語 \t tabs"
    assert tok.decode(tok.encode(odd)) == odd  # byte-level: no unknown tokens
    save_tokenizer(tok, tmp_path / "tok.json")
    loaded = build_tokenizer("bpe", path=str(tmp_path / "tok.json"))
    assert loaded.encode(TEXT) == ids and tokenizer_digest(loaded) == tokenizer_digest(tok)


def test_bpe_vocab_too_small_and_unknown_kind():
    with pytest.raises(ConfigError, match="at least 257"):
        HFTokenizer.train_bpe([TEXT], vocab_size=100)
    with pytest.raises(ConfigError, match="kind='word'"):
        build_tokenizer("word", [TEXT])


def test_iter_chunks_cuts_at_newlines_and_covers_everything():
    chunks = list(iter_chunks(TEXT, 50))
    assert "".join(chunks) == TEXT
    assert all(c.endswith("\n") for c in chunks[:-1])


def test_cached_tokenizer_trains_once_then_reads_the_cache(tmp_path):
    from bigmodel.tokenizers import cached_tokenizer

    calls = []

    def texts():
        calls.append(1)
        return [TEXT]

    cache = tmp_path / "sub" / "tokenizer_x.json"
    first = cached_tokenizer({"kind": "char"}, texts, cache)
    second = cached_tokenizer({"kind": "char"}, texts, cache)
    assert calls == [1] and cache.is_file()  # the second call reads no corpus
    assert tokenizer_digest(first) == tokenizer_digest(second)
    assert not [p for p in cache.parent.iterdir() if p != cache]  # no temp file left behind
    # an explicit path wins and is not cached
    other = tmp_path / "given.json"
    save_tokenizer(CharTokenizer.train("xyz"), other)
    tok = cached_tokenizer({"kind": "char", "path": str(other)}, texts, tmp_path / "unused.json")
    assert tok.vocab_size == 3 and not (tmp_path / "unused.json").exists() and calls == [1]
    # default_kind applies when the config names none: bpe without vocab_size is a clear error
    with pytest.raises(ConfigError, match="vocab_size"):
        cached_tokenizer({}, texts, tmp_path / "bpe.json", default_kind="bpe")
