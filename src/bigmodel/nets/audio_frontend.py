"""On-device, batched audio features: waveform augmentation -> log-mel -> SpecAugment.

Used as ``ClassificationModule(frontend=...)`` (config group ``frontend/``), so features are computed on
the training device, one call per batch, instead of per file on the CPU in the loader.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn
from torchaudio.transforms import AmplitudeToDB, FrequencyMasking, MelSpectrogram, TimeMasking


def _samples(ms: float | None, samples: int | None, sample_rate_hz: int, key: str) -> int:
    if samples is not None:
        n = int(samples)
    elif ms is not None:
        n = round(ms * sample_rate_hz / 1000)
    else:
        raise ValueError(f"Set {key}_ms (milliseconds) or {key}_samples.")
    if n < 1:
        raise ValueError(
            f"{key}_ms / {key}_samples gives {n} samples at {sample_rate_hz} Hz; it must be >= 1."
        )
    return n


def empty_mel_filters(n_fft: int, n_mels: int, sample_rate_hz: int, f_min_hz: float, f_max_hz: float) -> int:
    """How many of the ``n_mels`` triangular mel filters cover no FFT bin (all-zero rows)."""
    # on the CPU even inside a `torch.device("meta")` context (meta-device model construction), where
    # the count could not be read
    with warnings.catch_warnings(), torch.device("cpu"):
        warnings.simplefilter("ignore", UserWarning)  # torchaudio warns about exactly this; we raise instead
        fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min_hz, f_max_hz, n_mels, sample_rate_hz)
        return int((fb.max(dim=0).values <= 0).sum())


def log_mel_transforms(
    sample_rate_hz: int,
    n_mels: int,
    n_fft: int,
    hop_samples: int,
    win_samples: int | None = None,
    f_min_hz: float = 0.0,
    f_max_hz: float | None = None,
    top_db: float | None = 80.0,
) -> tuple[MelSpectrogram, AmplitudeToDB]:
    """The one log-mel construction, shared by :class:`LogMelFrontend` and the audio media callback:
    torchaudio's ``MelSpectrogram`` (power 2, centred STFT) and ``AmplitudeToDB`` (power, ``top_db``).

    Apply as ``to_db(mel(x))``: ``(..., T)`` waveforms -> ``(..., n_mels, frames)`` dB with
    ``frames = 1 + T // hop_samples``. ``top_db`` is relative to the peak of each 3-D slice, so pass
    ``(B, 1, n_mels, frames)`` for a per-clip range (as the frontend does).

    Args:
        sample_rate_hz: input sample rate in Hz.
        n_mels: mel bands.
        n_fft: FFT size in samples.
        hop_samples: STFT hop in samples.
        win_samples: STFT window in samples (None: ``n_fft``).
        f_min_hz, f_max_hz: mel range in Hz (``f_max_hz`` None: torchaudio's ``sample_rate // 2``).
        top_db: dynamic range kept below the peak, in dB (None: all).
    """
    # Built on the CPU even inside a `torch.device("meta")` context: torchaudio reads the filterbank
    # while building it, and these fixed buffers (no parameters) are tiny.
    with torch.device("cpu"):
        mel = MelSpectrogram(
            sample_rate=int(sample_rate_hz),
            n_fft=int(n_fft),
            win_length=win_samples,
            hop_length=int(hop_samples),
            f_min=f_min_hz,
            f_max=f_max_hz,
            n_mels=int(n_mels),
            power=2.0,
        )
    return mel, AmplitudeToDB(stype="power", top_db=top_db)


class LogMelFrontend(nn.Module):
    """Batched log-mel spectrogram (torchaudio ``MelSpectrogram`` + ``AmplitudeToDB``) with training-only
    augmentation: random gain and additive white noise at a random SNR on the waveform, then SpecAugment
    frequency and time masks (Park et al. 2019, https://arxiv.org/abs/1904.08779) on the features.

    Shapes: input ``(B, T)`` waveforms (or ``(T,)``); output ``(B, n_mels, frames)`` with
    ``frames = 1 + max(T, n_fft) // hop`` (centred STFT). Clips shorter than one FFT window are
    zero-padded to ``n_fft`` samples first.

    Args:
        sample_rate_hz: sample rate of the input in Hz.
        n_mels: mel bands.
        win_ms, hop_ms: STFT window and hop in milliseconds; ``win_samples``/``hop_samples`` (samples)
            take precedence when set.
        n_fft: FFT size; default the next power of two >= the window.
        f_min_hz, f_max_hz: mel range in Hz (``f_max_hz`` default: Nyquist).
        top_db: dynamic range kept below each clip's peak, in dB.
        normalize: standardise each clip's log-mel to zero mean, unit variance.
        gain_db: training gain drawn uniformly from ``[-gain_db, +gain_db]`` dB per clip (0: off).
        snr_db: training noise SNR in dB, a number or a ``[low, high]`` range drawn per clip (null: off).
        noise_p: probability that a training clip gets noise.
        freq_mask_bins, time_mask_frames: SpecAugment maximum mask widths (0: off).
        num_freq_masks, num_time_masks: masks of each kind per clip.

    Raises:
        ValueError: at construction, for non-positive window/hop, a window longer than ``n_fft``,
            ``f_max_hz`` above Nyquist, or ``n_mels`` too large for the sample rate and FFT size (some
            mel filters would be empty); the message gives the largest ``n_mels`` that works.
    """

    def __init__(
        self,
        sample_rate_hz: int,
        n_mels: int = 40,
        win_ms: float | None = 25.0,
        hop_ms: float | None = 10.0,
        win_samples: int | None = None,
        hop_samples: int | None = None,
        n_fft: int | None = None,
        f_min_hz: float = 0.0,
        f_max_hz: float | None = None,
        top_db: float | None = 80.0,
        normalize: bool = True,
        gain_db: float = 0.0,
        snr_db: float | Sequence[float] | None = None,
        noise_p: float = 0.5,
        freq_mask_bins: int = 0,
        time_mask_frames: int = 0,
        num_freq_masks: int = 1,
        num_time_masks: int = 1,
    ) -> None:
        super().__init__()
        self.sample_rate_hz = int(sample_rate_hz)
        self.win_length = _samples(win_ms, win_samples, self.sample_rate_hz, "win")
        self.hop_length = _samples(hop_ms, hop_samples, self.sample_rate_hz, "hop")
        self.n_fft = int(n_fft) if n_fft else 1 << (self.win_length - 1).bit_length()
        if self.win_length > self.n_fft:
            raise ValueError(
                f"The window ({self.win_length} samples) is longer than n_fft={self.n_fft}; "
                "raise n_fft or shorten win_ms."
            )
        nyquist = self.sample_rate_hz / 2
        f_max_hz = nyquist if f_max_hz is None else float(f_max_hz)
        if not 0 <= f_min_hz < f_max_hz <= nyquist:
            raise ValueError(
                f"Need 0 <= f_min_hz < f_max_hz <= {nyquist:g} Hz (Nyquist at "
                f"{self.sample_rate_hz} Hz); got f_min_hz={f_min_hz}, f_max_hz={f_max_hz}."
            )
        if n_mels < 1:
            raise ValueError(f"n_mels={n_mels} must be >= 1 (40 or 64 are usual).")
        empty = empty_mel_filters(self.n_fft, n_mels, self.sample_rate_hz, f_min_hz, f_max_hz)
        if empty:
            ok = n_mels - 1
            while ok > 1 and empty_mel_filters(self.n_fft, ok, self.sample_rate_hz, f_min_hz, f_max_hz):
                ok -= 1
            raise ValueError(
                f"n_mels={n_mels} is too large for sample_rate_hz={self.sample_rate_hz} with "
                f"n_fft={self.n_fft} ({self.n_fft // 2 + 1} FFT bins, {f_min_hz:g}-{f_max_hz:g} Hz): {empty} mel "
                f"filters would be empty. Use n_mels <= {max(ok, 1)}, or a longer window (win_ms / n_fft)."
            )
        self.n_mels = n_mels
        # 4-D input ((B, 1, F, T)) makes top_db relative to each clip's own peak, not the batch's.
        self.mel, self.to_db = log_mel_transforms(
            self.sample_rate_hz,
            n_mels,
            self.n_fft,
            self.hop_length,
            self.win_length,
            f_min_hz,
            f_max_hz,
            top_db,
        )
        self.normalize = normalize
        self.gain_db = float(gain_db)
        if snr_db is None:
            self.snr_range = None
        else:
            lo_hi = [float(snr_db)] * 2 if isinstance(snr_db, int | float) else [float(v) for v in snr_db]
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ValueError(f"snr_db={snr_db} must be a number or [low, high] in dB.")
            self.snr_range = tuple(lo_hi)
        self.noise_p = float(noise_p)
        masks: list[nn.Module] = [
            FrequencyMasking(freq_mask_bins, iid_masks=True) for _ in range(num_freq_masks)
        ]
        masks += [TimeMasking(time_mask_frames, iid_masks=True) for _ in range(num_time_masks)]
        self.spec_augment = nn.ModuleList(m for m in masks if m.mask_param > 0)

    def num_frames(self, num_samples: int) -> int:
        """Frames of the output for a clip of ``num_samples`` samples."""
        return 1 + max(num_samples, self.n_fft) // self.hop_length

    def augment_waveform(self, x: torch.Tensor) -> torch.Tensor:
        """Random gain and additive noise on ``(B, T)`` waveforms (training only)."""
        b = x.shape[0]
        if self.gain_db > 0:
            gain_db = (torch.rand(b, 1, device=x.device) * 2 - 1) * self.gain_db
            x = x * torch.pow(10.0, gain_db / 20)
        if self.snr_range is not None and self.noise_p > 0:
            lo, hi = self.snr_range
            snr = lo + torch.rand(b, device=x.device) * (hi - lo)
            noisy = AF.add_noise(x, torch.randn_like(x), snr)
            use = torch.rand(b, 1, device=x.device) < self.noise_p
            x = torch.where(use, noisy, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(f"LogMelFrontend expects waveforms (B, T); got shape {tuple(x.shape)}.")
        # STFT and dB need float32 (no half/bf16 FFT on CPU, and fp16 overflows power spectra), so
        # features are computed outside autocast; the net after it runs in the trainer's precision.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._features(x.float())

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.n_fft:
            x = F.pad(x, (0, self.n_fft - x.shape[-1]))
        if self.training:
            x = self.augment_waveform(x)
        feats = self.to_db(self.mel(x).unsqueeze(1))  # (B, 1, n_mels, frames)
        if self.normalize:
            mean = feats.mean(dim=(-2, -1), keepdim=True)
            std = feats.std(dim=(-2, -1), keepdim=True)
            feats = (feats - mean) / (std + 1e-5)
        if self.training:
            for mask in self.spec_augment:  # masks fill with 0, the mean after normalisation
                feats = mask(feats)
        return feats.squeeze(1)
