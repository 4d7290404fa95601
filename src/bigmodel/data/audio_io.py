"""Audio decoding and clip preparation shared by the audio DataModules (``bigmodel.data.audio``).

Files are decoded with ``soundfile`` (libsndfile: WAV, FLAC, OGG/Vorbis, ...), mixed down to mono and
resampled with torchaudio's band-limited resampler. Features (log-mel, SpecAugment) are *not* computed
here: they run on the training device in batches, see ``bigmodel.nets.audio_frontend``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from bigmodel.data.folders import BadFileError, BadFileHandler

AUDIO_EXTENSIONS = ("wav", "flac", "ogg")

# libsndfile notes a data chunk shorter than its header claims as "data : <declared> (should be <actual>)".
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be\s*(\d+)\)", re.MULTILINE)


class BadAudioError(ValueError):
    """A file that cannot be decoded to at least one audio sample; the message says why."""


def decode_audio(path: str | Path, sample_rate_hz: int) -> torch.Tensor:
    """Decode one file to a mono float32 waveform at ``sample_rate_hz``.

    Multi-channel audio is averaged to mono; another sample rate is resampled (torchaudio
    ``functional.resample``, windowed sinc).

    Returns:
        ``(T,)`` float32 samples in [-1, 1].

    Raises:
        BadAudioError: an empty file, a file that is not audio (whatever its extension), a corrupt
            header, a data chunk shorter than its header says (truncated), zero samples, or NaN/inf
            samples (a float WAV can hold them; one such clip would make every loss and metric NaN).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadAudioError("zero-byte file")
    try:
        info = sf.info(str(path))
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, EOFError) as e:
        raise BadAudioError(f"not decodable audio ({e})") from e
    m = _TRUNCATED.search(info.extra_info or "")
    if m and int(m.group(2)) < int(m.group(1)):
        raise BadAudioError(
            f"truncated: the data chunk holds {m.group(2)} of the {m.group(1)} bytes its header declares"
        )
    if data.shape[0] == 0:
        raise BadAudioError("no audio samples (header only)")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise BadAudioError(f"{bad} of {data.shape[0]} samples are NaN or inf")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sr != sample_rate_hz:
        wave = AF.resample(wave, orig_freq=sr, new_freq=sample_rate_hz)
    return wave.contiguous()


def fit_clip(
    wave: torch.Tensor, num_samples: int, random: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop or zero-pad ``(T,)`` to ``(num_samples,)``.

    ``random=True`` (training) takes a random crop and pads at a random offset, a free time-shift
    augmentation; ``random=False`` (evaluation) centres both, so evaluation is deterministic.
    """
    t = wave.shape[0]
    if t == num_samples:
        return wave
    slack = abs(t - num_samples)
    start = int(torch.randint(0, slack + 1, (1,), generator=generator)) if random else slack // 2
    if t > num_samples:
        return wave[start : start + num_samples]
    out = wave.new_zeros(num_samples)
    out[start : start + t] = wave
    return out


class AudioClipDataset(Dataset):
    """``(waveform (T,), label)`` items, optionally cropped/padded to ``clip_samples``.

    Args:
        items: ``(path, label)`` pairs.
        sample_rate_hz: target sample rate.
        clip_samples: fixed clip length in samples, or ``None`` to keep each clip's own length (the
            collate function then pads per batch).
        train: random crop/pad position when true, centred when false.
        preload: decode every file now (into memory, so epochs never touch the disk) and drop bad
            ones through ``on_bad``; otherwise decode per item (for datasets too big for memory).
        on_bad: the ``data.on_bad_file`` policy (:class:`BadFileHandler`).

    Raises:
        BadFileError: a bad file under ``data.on_bad_file=error``.
    """

    def __init__(
        self,
        items: Sequence[tuple[Path, int]],
        sample_rate_hz: int,
        clip_samples: int | None,
        train: bool,
        preload: bool = True,
        on_bad: BadFileHandler | None = None,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.clip_samples = clip_samples
        self.train = train
        self.on_bad = on_bad or BadFileHandler("error")
        self.waves: list[torch.Tensor] | None = None
        if preload:
            kept, waves = [], []
            for path, label in items:
                wave = self._decode(path)
                if wave is not None:
                    kept.append((path, label))
                    waves.append(wave)
            items, self.waves = kept, waves
        self.items = list(items)

    def _decode(self, path: Path) -> torch.Tensor | None:
        try:
            return decode_audio(path, self.sample_rate_hz)
        except BadAudioError as e:
            self.on_bad(path, str(e))
            return None

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        if self.waves is not None:
            wave = self.waves[i]
        else:
            try:
                wave = decode_audio(path, self.sample_rate_hz)
            except BadAudioError as e:  # lazy mode cannot drop an item mid-epoch
                raise BadFileError(f"Bad data file {path}: {e}. Fix or remove the file.") from e
        if self.clip_samples is not None:
            wave = fit_clip(wave, self.clip_samples, random=self.train)
        return wave, label


def pad_collate(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Collate clips of any lengths: zero-pad at the end to the longest clip of the batch.

    Returns:
        ``waves (B, T_max)`` float32, ``labels (B,)`` int64, ``lengths (B,)`` int64 (samples before padding).
    """
    lengths = torch.tensor([w.shape[0] for w, _ in batch], dtype=torch.long)
    waves = pad_sequence([w.float() for w, _ in batch], batch_first=True, padding_value=0.0)
    labels = torch.tensor([y for _, y in batch], dtype=torch.long)
    return waves, labels, lengths


def seconds_to_samples(seconds: float | None, sample_rate_hz: int) -> int | None:
    """``round(seconds * sample_rate_hz)``; ``None`` passes through."""
    return None if seconds is None else max(1, round(seconds * sample_rate_hz))
