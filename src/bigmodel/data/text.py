"""Causal language-modelling data: a corpus encoded once into a memory-mapped token array, from which
random ``block_size`` windows are drawn.

- ``ShakespeareDataModule`` (``data=shakespeare``): Tiny Shakespeare, char-level
  (https://github.com/karpathy/char-rnn, ``data/tinyshakespeare/input.txt``).
- ``TextFileDataModule`` (``data=text_file``): any UTF-8 file or folder of files, ``char`` or byte-level BPE.

The token stream is split contiguously: the first ``1 - val_fraction`` of the tokens train, the rest is
val (and test). Batches are ``(x, y)``, both ``(B, T)`` int64 with ``T = block_size`` and ``y`` = ``x``
shifted left by one token. The token file lives in ``<cache_dir>/text_lm/<corpus>_<fingerprint>/``, so
memory does not grow with the corpus and a second run (or DDP rank) reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bigmodel.data.base import BaseDataModule
from bigmodel.data.download import fetch, sha256_file
from bigmodel.data.folders import BadFileHandler
from bigmodel.data.text_io import decode_utf8
from bigmodel.tokenizers import (
    Tokenizer,
    cached_tokenizer,
    iter_chunks,
    save_in_run_dir,
    tokenizer_digest,
    tokenizer_from_dict,
)
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


class TokenWindows(Dataset):
    """Windows of ``block_size + 1`` tokens from a 1-D token array, returned as ``(x, y)`` int64
    ``(T,)`` tensors. ``starts`` gives the window offsets; by default every offset (for random sampling)."""

    def __init__(self, tokens: np.ndarray, block_size: int, starts: np.ndarray | None = None) -> None:
        self.tokens, self.block_size = tokens, block_size
        self.starts = starts

    def __len__(self) -> int:
        return len(self.starts) if self.starts is not None else len(self.tokens) - self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i]) if self.starts is not None else int(i)
        chunk = torch.from_numpy(self.tokens[s : s + self.block_size + 1].astype(np.int64))
        return chunk[:-1], chunk[1:]


class LMDataModule(BaseDataModule):
    """Base of the language-modelling DataModules; subclasses give ``corpus_files()``.

    Args:
        block_size: context length T in tokens.
        tokenizer: ``{kind: char|bpe, vocab_size: int (bpe), path: a saved tokenizer.json or null}``.
        val_fraction: the last fraction of the token stream used for val/test.
        val_windows: number of evenly spaced val windows (null: every non-overlapping window).
        samples_per_epoch: random train windows per epoch (null: one per token offset). Runs are
            step-based (``trainer.max_steps``), so this only sets how often an "epoch" ends.
        cache_dir: where the token file and tokenizer are written (``paths.cache_dir``).
        on_bad_file: ``warn`` replaces invalid UTF-8 bytes (naming file and offset); ``error`` raises.
        **kwargs: loader settings, see :class:`BaseDataModule`.

    Attributes set by ``setup``: ``tokenizer``, ``tokens`` (the memory-mapped token array) and
    ``vocab_size`` (read by the LM module when ``model.net.vocab_size`` is null).

    Raises:
        ConfigError: an empty or whitespace-only corpus, or a split shorter than ``block_size + 1`` tokens.
    """

    name = "corpus"

    def __init__(
        self,
        block_size: int = 256,
        tokenizer: dict[str, Any] | None = None,
        val_fraction: float = 0.1,
        val_windows: int | None = None,
        samples_per_epoch: int | None = None,
        cache_dir: str = ".cache",
        on_bad_file: str = "warn",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if block_size < 1 or not 0 < val_fraction < 1:
            raise ConfigError(f"data.block_size={block_size} must be >= 1 and data.val_fraction in (0, 1).")
        self.block_size = block_size
        self.tokenizer_cfg = dict(tokenizer or {"kind": "char"})
        self.val_fraction, self.val_windows, self.samples_per_epoch = (
            val_fraction,
            val_windows,
            samples_per_epoch,
        )
        self.cache_root = Path(cache_dir)
        self.bad_files = BadFileHandler(on_bad_file)
        self.tokenizer: Tokenizer | None = None
        self.tokens: np.ndarray | None = None
        self._warned: set[str] = set()  # files whose encoding problems were already reported

    # -- corpus ---------------------------------------------------------------------------------------
    def corpus_files(self) -> list[Path]:
        raise NotImplementedError

    def _texts(self, files: list[Path]) -> Iterator[str]:
        for f in files:
            yield decode_utf8(f.read_bytes(), f, self.bad_files.policy, warn=str(f) not in self._warned)
            self._warned.add(str(f))

    def _fingerprint(self, files: list[Path]) -> str:
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    # -- encoding, once -----------------------------------------------------------------------------------
    def _cache_dir(self, files: list[Path]) -> Path:
        return self.cache_root / "text_lm" / f"{self.name}_{self._fingerprint(files)}"

    def _get_tokenizer(self, files: list[Path], cache: Path) -> Tokenizer:
        # the cache folder is already keyed on the corpus files; the name adds the tokenizer settings
        key = hashlib.sha256(json.dumps(self.tokenizer_cfg, sort_keys=True).encode()).hexdigest()[:12]
        return cached_tokenizer(
            self.tokenizer_cfg,
            lambda: (c for text in self._texts(files) for c in iter_chunks(text)),
            cache / f"tokenizer_{key}.json",
            default_kind="char",
        )

    def _encode(self, files: list[Path], cache: Path, tok: Tokenizer) -> np.ndarray:
        """Encode the corpus once into ``tokens_<tokenizer>.bin`` and memory-map it."""
        dtype = np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32
        out = cache / f"tokens_{tokenizer_digest(tok)}.bin"
        meta = out.with_suffix(".json")
        if not (out.is_file() and meta.is_file()):
            has_text = False
            with atomic_write(out, "wb") as f:
                for text in self._texts(files):
                    for chunk in iter_chunks(text):
                        has_text = has_text or bool(chunk.strip())
                        np.asarray(tok.encode(chunk), dtype=dtype).tofile(f)
            # written after the token file, so a present meta always describes a complete one
            with atomic_write(meta, "w") as f:
                f.write(json.dumps({"has_text": has_text, "files": [str(p) for p in files[:100]]}))
            log.info("Encoded %s into %s", self.name, out)
        self._has_text = json.loads(meta.read_text())["has_text"]
        if out.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)  # np.memmap cannot map an empty file
        return np.memmap(out, dtype=dtype, mode="r")

    def prepare_data(self) -> None:
        # Rank 0 encodes; other DDP ranks then find the cached file in setup().
        files = self.corpus_files()
        cache = self._cache_dir(files)
        self._encode(files, cache, self._get_tokenizer(files, cache))

    def setup(self, stage: str | None = None) -> None:
        if self.tokens is not None:
            return
        files = self.corpus_files()
        self._cache = self._cache_dir(files)
        self._use_tokenizer(self._get_tokenizer(files, self._cache), files)
        self.bad_files.summary()
        save_in_run_dir(self.tokenizer, self.trainer)

    def _use_tokenizer(self, tok: Tokenizer, files: list[Path]) -> None:
        tokens = self._encode(files, self._cache, tok)
        names = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        if len(tokens) == 0 or not self._has_text:
            raise ConfigError(f"The corpus ({names}) is empty or whitespace only; give a file with text.")
        n_val = int(len(tokens) * self.val_fraction)
        n_train = len(tokens) - n_val
        for split, n in (("train", n_train), ("val", n_val)):
            if n < self.block_size + 1:
                raise ConfigError(
                    f"The corpus ({names}) has {len(tokens)} tokens; its {split} split has {n} tokens, fewer "
                    f"than data.block_size + 1 = {self.block_size + 1}. Lower data.block_size, lower "
                    "data.val_fraction, or use a longer corpus."
                )
        self.tokenizer, self.tokens = tok, tokens
        train, val = tokens[:n_train], tokens[n_train:]
        self.data_train = TokenWindows(train, self.block_size)
        n_windows = (len(val) - 1) // self.block_size
        count = min(self.val_windows or n_windows, len(val) - self.block_size)
        starts = np.linspace(0, len(val) - self.block_size - 1, count).astype(np.int64)
        self.data_val = self.data_test = TokenWindows(val, self.block_size, starts)
        log.info(
            "%s: %d tokens (vocab %d): %d train, %d val windows", self.name, len(tokens), tok.vocab_size,
            n_train, count,
        )  # fmt: skip

    @property
    def vocab_size(self) -> int:
        if self.tokenizer is None:
            raise RuntimeError("vocab_size is known after setup().")
        return self.tokenizer.vocab_size

    def train_dataloader(self) -> DataLoader:
        n = self.samples_per_epoch or len(self.data_train)
        sampler = self._resumable_sampler(self.data_train, replacement=True, num_samples=n)
        return DataLoader(
            self.data_train,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed),
        )

    # The tokenizer travels in the checkpoint (Lightning stores DataModule state); a run restored from it
    # (bigmodel.eval, resume) re-encodes with that tokenizer if the one rebuilt here differs.
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()  # the sampler position
        return {**state, "tokenizer": self.tokenizer.to_dict()} if self.tokenizer is not None else state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "tokenizer" in state and self.tokenizer is not None:
            tok = tokenizer_from_dict(state["tokenizer"])
            if tokenizer_digest(tok) != tokenizer_digest(self.tokenizer):
                log.info("Using the checkpoint's tokenizer; re-encoding %s.", self.name)
                self._use_tokenizer(tok, self.corpus_files())


class ShakespeareDataModule(LMDataModule):
    """Tiny Shakespeare (1,115,394 characters, 65 distinct), char-level by default.

    Reads ``<data_dir>/tinyshakespeare/input.txt``; without it, downloads :attr:`URL` into
    ``<cache_dir>/tinyshakespeare/`` and checks :attr:`SHA256`.

    Raises:
        ConfigError: no local file and no network (naming URL, expected path and checksum).
    """

    name = "tinyshakespeare"
    URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

    def __init__(self, data_dir: str = "data", download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_dir, self.download = Path(data_dir), download

    def corpus_files(self) -> list[Path]:
        local = self.data_dir / "tinyshakespeare" / "input.txt"
        if local.is_file():
            return [local]
        cached = self.cache_root / "tinyshakespeare" / "input.txt"
        if not self.download and not cached.is_file():
            raise ConfigError(
                f"Tiny Shakespeare not found at {local} and data.download=false. Download {self.URL} "
                f"(sha256 {self.SHA256}) to that path."
            )
        return [fetch(self.URL, cached, self.SHA256, local) if not cached.is_file() else cached]

    def setup(self, stage: str | None = None) -> None:
        if self.tokens is None:
            path = self.corpus_files()[0]
            if (got := sha256_file(path)) != self.SHA256:  # a local file is the user's own; warn only
                log.warning(
                    "%s is not the reference Tiny Shakespeare (sha256 %s, expected %s).",
                    path,
                    got,
                    self.SHA256,
                )
        super().setup(stage)


class TextFileDataModule(LMDataModule):
    """A language model on your own text: ``path`` is a UTF-8 file or a folder (all files below it,
    sorted, hidden ones skipped; ``extensions`` filters them, e.g. ``[txt, md]``).

    Raises:
        ConfigError: a missing path, or a folder without matching files.
    """

    def __init__(self, path: str, extensions: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.extensions = {e.lower().lstrip(".") for e in extensions} if extensions else None
        self.name = self.path.stem or "corpus"

    def corpus_files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise ConfigError(
                f"data.path={self.path} does not exist; give a UTF-8 text file or a folder of them."
            )
        files = sorted(
            f
            for f in self.path.rglob("*")
            if f.is_file()
            and not any(p.startswith(".") for p in f.relative_to(self.path).parts)
            and (self.extensions is None or f.suffix.lower().lstrip(".") in self.extensions)
        )
        if not files:
            raise ConfigError(
                f"data.path={self.path} holds no files{f' with extensions {sorted(self.extensions)}' if self.extensions else ''}."
            )
        return _read_once(files, self.path)


def _read_once(files: list[Path], root: Path) -> list[Path]:
    """``files`` without the second and later paths to the same file (symlinks), with a note naming them:
    a file reached twice would otherwise be read twice and weigh double in the corpus."""
    seen: dict[Path, Path] = {}
    kept: list[Path] = []
    for f in files:
        real = f.resolve()
        if real in seen:
            log.info(
                "data.path=%s: %s is the same file as %s (a symlink); read once.",
                root,
                f.relative_to(root),
                seen[real].relative_to(root),
            )
            continue
        seen[real] = f
        kept.append(f)
    return kept
