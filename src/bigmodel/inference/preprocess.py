"""Eval-time preprocessing rebuilt from a checkpoint's stored run config (``checkpoint["bigmodel"]``).

Every preprocessor turns one input (a file, bytes, or a text) into a *raw* sample, collates raw samples
into a batch, and has an ``adapter`` module mapping that batch to the net's input. The adapter is part
of the exported graph, so ONNX / ``torch.export`` models take the same raw batch:

- ``image``: uint8 ``(B, C, H, W)`` (decoded with PIL, converted to RGB/L, resized on the shorter side
  and centre-cropped to ``image_size``, then ``data.eval_transforms``); the adapter scales to [0, 1] and
  normalises with ``data.mean``/``data.std``, as the DataModule does per batch.
- ``audio``: float32 waveforms ``(B, T)`` at ``data.sample_rate_hz`` (soundfile + torchaudio resampling,
  centred crop/pad to ``data.clip_s``; zero-padded at the end per batch when ``clip_s`` is null). The
  log-mel frontend is inside the model, so it is inside the graph too.
- ``text``: int64 token ids ``(B, T)``, right-padded with the tokenizer's ``pad_id``, ``T <= max_length``
  (the tokenizer is the one stored in the checkpoint; it runs outside the graph).
- ``lm``: prompts (strings); generation runs the module's own sampling loop.

Nothing is re-read from the training data.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from bigmodel.data.audio_io import AUDIO_EXTENSIONS, BadAudioError, decode_audio, fit_clip, seconds_to_samples
from bigmodel.data.images import DECODE_ERRORS, load_image
from bigmodel.data.vision import IMAGE_EXTENSIONS, build_transforms
from bigmodel.tokenizers import tokenizer_from_dict
from bigmodel.utils.errors import ConfigError

TEXT_EXTENSIONS = ("txt",)


class InputError(ValueError):
    """One input that cannot be used (unreadable, empty, another kind than the model takes)."""


def input_kind(path: str | Path) -> str | None:
    """``image``, ``audio`` or ``text`` from a file's extension, else None."""
    ext = Path(path).suffix.lower().lstrip(".")
    for kind, exts in (("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("text", TEXT_EXTENSIONS)):
        if ext in exts:
            return kind
    return None


class Preprocessor:
    """Base class; see the module docstring. ``kind`` names the input modality."""

    kind = ""
    extensions: tuple[str, ...] = ()
    adapter: nn.Module = nn.Identity()

    def load_file(self, path: str | Path) -> Any:
        """A raw sample from a file. Raises :class:`InputError`."""
        raise NotImplementedError

    def load_bytes(self, data: bytes) -> Any:
        """A raw sample from an uploaded file's bytes. Raises :class:`InputError`."""
        raise NotImplementedError

    def load_text(self, text: str) -> Any:
        raise InputError(f"this {self.kind} model takes {self.kind} files, not text")

    def collate(self, samples: Sequence[Any]) -> Any:
        return torch.stack(list(samples))

    def example(self, batch: int = 2) -> torch.Tensor:
        """A raw batch of the right shape and dtype (for export tracing)."""
        raise NotImplementedError

    def manifest(self) -> dict[str, Any]:
        """What a runtime needs to reproduce this preprocessing (stored in ``manifest.json``)."""
        return {"kind": self.kind}


class _Normalize(nn.Module):
    """uint8 ``(B, C, H, W)`` -> float32 in [0, 1], then ``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        super().__init__()
        self.use = mean is not None
        self.register_buffer("mean", torch.tensor(list(mean or [0.0])).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std or [1.0])).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        return (x - self.mean) / self.std if self.use else x


class ImagePreprocessor(Preprocessor):
    kind, extensions = "image", IMAGE_EXTENSIONS

    def __init__(self, in_channels: int, image_size: int, mean=None, std=None, eval_transforms=None) -> None:
        self.in_channels, self.image_size = int(in_channels), int(image_size)
        self.mean, self.std = mean, std
        self.transform_specs = list(eval_transforms or [])
        self.transform = build_transforms(self.transform_specs)
        self.adapter = _Normalize(mean, std)

    def _decode(self, src: Any, name: str) -> torch.Tensor:
        try:
            x = load_image(src, "RGB" if self.in_channels == 3 else "L", self.image_size)
        except DECODE_ERRORS as e:
            detail = f"{type(e).__name__}: {e}" if name != "upload" else type(e).__name__  # no BytesIO repr
            raise InputError(f"{name}: cannot decode image ({detail})") from None
        return self.transform(x) if self.transform is not None else x

    def load_file(self, path: str | Path) -> torch.Tensor:
        return self._decode(path, str(path))

    def load_bytes(self, data: bytes) -> torch.Tensor:
        return self._decode(io.BytesIO(data), "upload")

    def example(self, batch: int = 2) -> torch.Tensor:
        return torch.randint(
            0, 256, (batch, self.in_channels, self.image_size, self.image_size), dtype=torch.uint8
        )

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": "image", "decode": f"PIL, convert to {'RGB' if self.in_channels == 3 else 'L'}, resize "
            f"shorter side + centre crop to {self.image_size}x{self.image_size}, uint8 (C, H, W)",
            "in_channels": self.in_channels, "image_size": self.image_size,
            "in_graph": "x / 255, then (x - mean) / std", "mean": self.mean, "std": self.std,
            "eval_transforms": self.transform_specs,
        }  # fmt: skip


class AudioPreprocessor(Preprocessor):
    kind, extensions = "audio", AUDIO_EXTENSIONS

    def __init__(self, sample_rate_hz: int, clip_s: float | None) -> None:
        self.sample_rate_hz, self.clip_s = int(sample_rate_hz), clip_s
        self.clip_samples = seconds_to_samples(clip_s, self.sample_rate_hz)

    def load_file(self, path: str | Path) -> torch.Tensor:
        try:
            wave = decode_audio(path, self.sample_rate_hz)
        except (BadAudioError, OSError) as e:
            raise InputError(f"{path}: {e}") from None
        return fit_clip(wave, self.clip_samples, random=False) if self.clip_samples else wave

    def load_bytes(self, data: bytes) -> torch.Tensor:
        # One decoder for files and uploads (its checks for truncated / header-only files included).
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            f.write(data)
            f.flush()
            try:
                return self.load_file(f.name)
            except InputError as e:
                raise InputError(str(e).replace(f.name, "upload")) from None

    def collate(self, samples: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(len(samples), max(int(s.shape[0]) for s in samples))
        for i, s in enumerate(samples):
            out[i, : s.shape[0]] = s
        return out

    def example(self, batch: int = 2) -> torch.Tensor:
        return torch.randn(batch, self.clip_samples or self.sample_rate_hz) * 0.1

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": "audio", "decode": "soundfile, mean to mono, torchaudio resample (windowed sinc)",
            "sample_rate_hz": self.sample_rate_hz, "clip_s": self.clip_s, "clip_samples": self.clip_samples,
            "clip": "centred crop / zero pad" if self.clip_samples else "zero pad at the end to the batch's longest",
            "in_graph": "log-mel frontend (STFT, mel filterbank, dB, per-clip normalisation) and the net",
        }  # fmt: skip


class TextPreprocessor(Preprocessor):
    kind, extensions = "text", TEXT_EXTENSIONS

    def __init__(self, tokenizer_state: dict[str, Any], max_length: int, kind: str = "text") -> None:
        self.kind = kind
        self.tokenizer_state = tokenizer_state
        self.tokenizer = tokenizer_from_dict(tokenizer_state)
        self.max_length = int(max_length)
        if (
            hasattr(self.tokenizer, "tok") and kind == "text"
        ):  # as the DataModule: truncate keeping end tokens
            self.tokenizer.tok.no_padding()
            self.tokenizer.tok.enable_truncation(self.max_length)

    def load_text(self, text: str) -> Any:
        if not text.strip():
            raise InputError("empty text")
        if self.kind == "lm":
            return text
        ids = self.tokenizer.encode(text)[: self.max_length]
        return torch.tensor(ids or [self.tokenizer.pad_id], dtype=torch.long)

    def load_file(self, path: str | Path) -> Any:
        raise InputError(f"{path}: a text model reads text files line by line (inputs=<file.txt>)")

    def load_bytes(self, data: bytes) -> Any:
        try:
            return self.load_text(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise InputError(f"upload is not UTF-8 text ({e})") from None

    def collate(self, samples: Sequence[Any]) -> Any:
        if self.kind == "lm":
            return list(samples)
        out = torch.full(
            (len(samples), max(len(s) for s in samples)), self.tokenizer.pad_id, dtype=torch.long
        )
        for i, s in enumerate(samples):
            out[i, : len(s)] = s
        return out

    def example(self, batch: int = 2) -> torch.Tensor:
        return torch.randint(1, max(2, self.tokenizer.vocab_size), (batch, min(8, self.max_length)))

    def manifest(self) -> dict[str, Any]:
        if self.kind == "lm":
            return {
                "kind": "lm", "tokenizer": self.tokenizer_state, "block_size": self.max_length,
                "prompt": "tokenizer ids of the prompt ([0] when empty); the loop feeds the last block_size",
            }  # fmt: skip
        return {
            "kind": self.kind, "tokenizer": self.tokenizer_state, "max_length": self.max_length,
            "pad_id": self.tokenizer.pad_id, "padding": "right, with pad_id; truncate to max_length",
        }  # fmt: skip


def _tokenizer_state(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The tokenizer a text run stored: the LM's top-level ``tokenizer``, or the DataModule state's."""
    if ckpt.get("tokenizer"):
        return ckpt["tokenizer"]
    for value in ckpt.values():  # Lightning stores DataModule state under the DataModule's class name
        if isinstance(value, dict) and isinstance(value.get("tokenizer"), dict):
            return value["tokenizer"]
    return None


def build_preprocessor(run_cfg: dict[str, Any], ckpt: dict[str, Any], module: Any) -> Preprocessor:
    """The eval preprocessing of the run that wrote ``ckpt`` (see the module docstring).

    Raises:
        ConfigError: a data module inference does not know, or a text checkpoint without a tokenizer.
    """
    # Resolve only the keys read here; ${paths.*} interpolations of the training machine are never needed.
    root = OmegaConf.create({"data": run_cfg["data"], "model": run_cfg["model"], "seed": 0, "paths": {}})

    def get(key: str, default: Any = None) -> Any:
        value = OmegaConf.select(root, f"data.{key}", default=default)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    target = str(run_cfg["data"].get("_target_", ""))
    if "LanguageModel" in str(run_cfg["model"].get("_target_", "")):
        state = _tokenizer_state(ckpt)
        if not state:
            raise ConfigError("This language-model checkpoint holds no tokenizer; it cannot read prompts.")
        return TextPreprocessor(state, int(module.hparams.net.get("block_size") or 1 << 30), kind="lm")
    if ".digits." in target:
        return ImagePreprocessor(1, 8)
    if ".vision." in target:
        return ImagePreprocessor(
            get("in_channels", 3), get("image_size", 32), get("mean"), get("std"), get("eval_transforms")
        )
    if ".audio." in target:
        defaults = {"SpokenDigitsDataModule": 8000}
        rate = get("sample_rate_hz") or defaults.get(target.rsplit(".", 1)[-1], 16000)
        return AudioPreprocessor(rate, get("clip_s", 1.0))
    if ".text_classification." in target:
        state = _tokenizer_state(ckpt)
        if not state:
            raise ConfigError("This text checkpoint holds no tokenizer (DataModule state); retrain it.")
        return TextPreprocessor(state, get("max_length", 64))
    raise ConfigError(f"Inference does not know the data module {target!r} of this checkpoint.")
