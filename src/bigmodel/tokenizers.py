"""Tokenizers for the text tasks, all serialisable as plain data (a dict holding strings), so that a
checkpoint carries its tokenizer and loads with ``torch.load(weights_only=True)``.

- ``char``: one id per distinct character of the corpus (sorted), as in char-rnn / nanoGPT's
  ``shakespeare_char``.
- ``bpe``: byte-level BPE trained with Hugging Face ``tokenizers`` (https://github.com/huggingface/tokenizers),
  as in GPT-2; never produces an unknown token.
- ``hf``: the tokenizer shipped with a pretrained model folder (``tokenizer.json``), e.g. MiniLM's WordPiece.

Every tokenizer maps ``str -> list[int]`` and back, and has ``vocab_size`` and ``pad_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write

PAD = "<pad>"


class CharTokenizer:
    """Character vocabulary: id ``i`` is ``chars[i]``.

    Raises:
        ConfigError: in ``encode``, for characters outside the vocabulary (listing them).
    """

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.pad_id = 0  # no padding in LM training; 0 only marks a position in classification batches

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The sorted set of characters seen in ``texts``."""
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        return cls(sorted(seen))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.stoi})
            raise ConfigError(
                f"Text has {len(unknown)} character(s) outside the {self.vocab_size}-character vocabulary: "
                f"{unknown!r}. Use only characters the model was trained on (e.g. remove or replace them)."
            ) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "chars": "".join(self.chars)}


class HFTokenizer:
    """A Hugging Face ``tokenizers.Tokenizer`` (byte-level BPE trained here, or a model's own)."""

    def __init__(self, tokenizer: Any, kind: str = "bpe") -> None:
        self.tok = tokenizer
        self.kind = kind
        pad = tokenizer.token_to_id(PAD)
        if pad is None and tokenizer.padding is not None:
            pad = tokenizer.padding.get("pad_id")
        if pad is None:
            pad = tokenizer.token_to_id("[PAD]")
        self.pad_id = int(pad or 0)

    @classmethod
    def train_bpe(
        cls, texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = (PAD,)
    ) -> HFTokenizer:
        """Train a byte-level BPE with at most ``vocab_size`` ids (specials first, so ``<pad>`` is 0).

        Raises:
            ConfigError: ``vocab_size`` smaller than the 256 byte symbols plus the special tokens.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        minimum = 256 + len(special_tokens)
        if vocab_size < minimum:
            raise ConfigError(
                f"data.tokenizer.vocab_size={vocab_size} is too small for byte-level BPE: it needs at least "
                f"{minimum} (256 bytes + {len(special_tokens)} special tokens). Raise it, e.g. to 4096."
            )
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(special_tokens),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok, "bpe")

    @classmethod
    def from_file(cls, path: str | Path, kind: str = "hf") -> HFTokenizer:
        """Load a ``tokenizer.json`` (e.g. from a pretrained model folder).

        Raises:
            ConfigError: the file does not exist.
        """
        from tokenizers import Tokenizer

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(
                f"Tokenizer file {path} not found; point data.tokenizer.path at a tokenizer.json."
            )
        return cls(Tokenizer.from_file(str(path)), kind)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(list(texts))]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "json": self.tok.to_str()}


Tokenizer = CharTokenizer | HFTokenizer


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`to_dict` output (as stored in checkpoints).

    Raises:
        ConfigError: an unknown ``kind``.
    """
    if d.get("kind") == "char":
        return CharTokenizer(list(d["chars"]))
    if d.get("kind") in ("bpe", "hf"):
        from tokenizers import Tokenizer as HFTok

        return HFTokenizer(HFTok.from_str(d["json"]), d["kind"])
    raise ConfigError(f"Unknown tokenizer kind {d.get('kind')!r}; expected char, bpe or hf.")


def build_tokenizer(
    kind: str, texts: Iterable[str] | None = None, vocab_size: int | None = None, path: str | None = None
) -> Tokenizer:
    """A tokenizer from ``data.tokenizer`` settings: ``path`` (a saved ``tokenizer.json`` or our own
    JSON from :func:`save_tokenizer`) wins; otherwise ``char``/``bpe`` are trained on ``texts``.

    Raises:
        ConfigError: an unknown ``kind``, or ``bpe`` without ``vocab_size``.
    """
    if path:
        p = Path(path)
        if p.is_file() and '"kind"' in p.read_text(encoding="utf-8")[:200]:
            return tokenizer_from_dict(json.loads(p.read_text(encoding="utf-8")))
        return HFTokenizer.from_file(p, "bpe" if kind == "bpe" else "hf")
    if kind == "char":
        return CharTokenizer.train(texts or [])
    if kind == "bpe":
        if not vocab_size:
            raise ConfigError("data.tokenizer.kind=bpe needs data.tokenizer.vocab_size (e.g. 4096).")
        return HFTokenizer.train_bpe(texts or [], vocab_size)
    raise ConfigError(
        f"data.tokenizer.kind={kind!r} is not one of: char, bpe (or give data.tokenizer.path=<tokenizer.json>)."
    )


def save_tokenizer(tok: Tokenizer, path: str | Path) -> None:
    """Write the tokenizer as JSON (``{"kind": ..., ...}``), atomically (a DDP rank or a second run
    reading it never sees half a file); :func:`build_tokenizer` reads it back."""
    with atomic_write(path, "w") as f:
        f.write(json.dumps(tok.to_dict()))


def cached_tokenizer(
    cfg: dict[str, Any],
    texts_fn: Callable[[], Iterable[str]],
    cache_file: str | Path,
    default_kind: str = "char",
) -> Tokenizer:
    """The tokenizer of a ``data.tokenizer`` config, trained at most once per ``cache_file``.

    ``cfg["path"]`` set: load that file (nothing is cached). Otherwise reuse ``cache_file`` when it
    exists, else train on ``texts_fn()`` (called only then, so a cache hit reads no corpus) and save
    the result there atomically. The caller keys ``cache_file`` on what the tokenizer depends on
    (settings and corpus).

    Args:
        cfg: ``{kind: char|bpe|hf, vocab_size: int (bpe), path: str | None}``.
        texts_fn: returns the training texts (an iterable of strings).
        cache_file: where the trained tokenizer is kept, e.g. ``<cache_dir>/.../tokenizer_<key>.json``.
        default_kind: the kind when ``cfg`` names none.

    Raises:
        ConfigError: as :func:`build_tokenizer` (an unknown kind, bpe without vocab_size, a missing path).
    """
    kind = cfg.get("kind") or default_kind
    if cfg.get("path"):
        return build_tokenizer(kind, path=str(cfg["path"]))
    cache_file = Path(cache_file)
    if cache_file.is_file():
        return build_tokenizer(kind, path=str(cache_file))
    tok = build_tokenizer(kind, texts_fn(), cfg.get("vocab_size"))
    save_tokenizer(tok, cache_file)
    return tok


def save_in_run_dir(tok: Tokenizer, trainer: Any) -> Path | None:
    """Write ``<run dir>/tokenizer.json`` (rank 0) so a run folder alone can decode its model's output;
    ``data.tokenizer.path=<run dir>/tokenizer.json`` reuses it. Returns the file written, or None.

    Nothing is written without a trainer, or when its ``default_root_dir`` is the working directory:
    that is Lightning's fallback for a Trainer built without one (a test, a notebook), and a run must
    never write into the working tree (a stray ``tokenizer.json`` was once committed that way).
    """
    if trainer is None or not trainer.is_global_zero or not trainer.default_root_dir:
        return None
    run_dir = Path(trainer.default_root_dir)
    if run_dir.resolve() == Path.cwd().resolve():
        return None
    save_tokenizer(tok, run_dir / "tokenizer.json")
    return run_dir / "tokenizer.json"


def tokenizer_digest(tok: Tokenizer) -> str:
    """A short stable hash of the tokenizer, used to key token caches."""
    return hashlib.sha256(json.dumps(tok.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def iter_chunks(text: str, size: int = 1 << 20) -> Iterator[str]:
    """Split ``text`` into pieces of about ``size`` characters, cut after a newline where possible,
    so a BPE never sees a word split across two pieces."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            nl = text.rfind("\n", start, end)
            end = nl + 1 if nl > start else end
        yield text[start:end]
        start = end
