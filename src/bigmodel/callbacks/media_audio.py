"""Audio media: validation clips with true/predicted labels, and their log-mel spectrograms."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer

from bigmodel.callbacks.media import MediaCallback, class_names, heatmap, label, markdown_table, step_outputs
from bigmodel.utils.errors import ConfigError


class MediaAudio(MediaCallback):
    """Logs ``val/audio`` (the first ``max_clips`` validation clips, captioned ``true: <name> / pred: <name>``)
    and ``val/log_mel`` (each clip's log-mel spectrogram as an image: time left to right, low frequencies at
    the bottom, brighter = louder, in dB relative to the clip's peak).

    Needs batches ``(x, y, ...)`` with raw waveforms ``x`` of shape ``(B, samples)`` or ``(B, 1, samples)``
    and a validation step returning ``{"preds", "target", ...}``. W&B: ``wandb.Audio`` and ``wandb.Image``;
    TensorBoard: ``add_audio`` / ``add_image`` per clip (``val/audio/<i>``, ``val/log_mel/<i>``) plus a
    Markdown table of labels (``val/audio_labels``).

    Args:
        sample_rate_hz: the waveforms' sample rate in Hz; ``None`` reads ``sample_rate_hz`` (or
            ``sample_rate``) from the datamodule.
        every_n_epochs: see :class:`MediaCallback`.
        max_clips: how many clips (1..64).
        max_clip_s: each clip is cut to this many seconds.
        n_mels, n_fft, hop_ms: log-mel settings (``hop_ms`` in milliseconds).

    Raises:
        ConfigError: bounds out of range; no sample rate given or found on the datamodule; waveforms of
            another shape; a step without ``preds``/``target``.
    """

    def __init__(
        self,
        sample_rate_hz: int | None = None,
        every_n_epochs: int = 1,
        max_clips: int = 8,
        max_clip_s: float = 10.0,
        n_mels: int = 64,
        n_fft: int = 1024,
        hop_ms: float = 10.0,
        name: str = "media_audio",
    ) -> None:
        super().__init__(every_n_epochs, name)
        if not 1 <= int(max_clips) <= 64 or max_clip_s <= 0:
            raise ConfigError(f"callbacks.{name}: max_clips must be 1..64 and max_clip_s > 0 seconds.")
        self.sample_rate_hz = sample_rate_hz
        self.max_clips, self.max_clip_s = int(max_clips), float(max_clip_s)
        self.n_mels, self.n_fft, self.hop_ms = n_mels, n_fft, hop_ms
        self.clips: list[tuple[torch.Tensor, int, int]] = []

    def _rate(self, trainer: Trainer) -> int:
        if self.sample_rate_hz:
            return int(self.sample_rate_hz)
        dm = getattr(trainer, "datamodule", None)
        rate = getattr(dm, "sample_rate_hz", None) or getattr(dm, "sample_rate", None)
        if not rate:
            raise ConfigError(
                f"callbacks.{self.name}.sample_rate_hz is null and the datamodule has no sample_rate_hz; set "
                f"callbacks.{self.name}.sample_rate_hz=<Hz> (e.g. ${{data.sample_rate_hz}})."
            )
        return int(rate)

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.clips = []
        self.rate = self._rate(trainer)

    def collect(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        if len(self.clips) >= self.max_clips:
            return
        preds, target = step_outputs(outputs, self.name)
        x = batch[0].detach()
        if x.dim() == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 2:
            raise ConfigError(
                f"callbacks.{self.name} needs raw waveforms (B, samples) or (B, 1, samples); the batch holds "
                f"{tuple(batch[0].shape)}. Compute features in the model's frontend, or remove callbacks.{self.name}."
            )
        keep = int(self.max_clip_s * self.rate)
        for i in range(min(len(x), len(preds), self.max_clips - len(self.clips))):
            self.clips.append((x[i, :keep].float().cpu(), int(target[i]), int(preds[i])))

    def log_mel_image(self, wave: torch.Tensor) -> np.ndarray:
        """``(samples,)`` waveform -> ``(n_mels, frames, 3)`` uint8 image, low frequencies at the bottom."""
        from bigmodel.nets.audio_frontend import log_mel_transforms  # torchaudio only when logging audio

        hop = max(1, int(self.rate * self.hop_ms / 1000))
        mel, to_db = log_mel_transforms(self.rate, self.n_mels, self.n_fft, hop, top_db=80.0)
        db = to_db(mel(wave.unsqueeze(0)))[0]
        return heatmap(db.flip(0).numpy())

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.clips:
            return
        names = class_names(trainer, 1 + max(max(t, p) for _, t, p in self.clips))
        captions = [f"true: {label(names, t)} / pred: {label(names, p)}" for _, t, p in self.clips]
        # Peak-normalise quiet or loud clips into [-1, 1], which both players expect.
        waves = [w / max(1.0, float(w.abs().max())) for w, _, _ in self.clips]
        mels = [self.log_mel_image(w) for w in waves]
        if self.wandb_runs(trainer):
            import wandb

            self.wandb_log(
                trainer,
                {
                    "val/audio": [
                        wandb.Audio(w.numpy(), sample_rate=self.rate, caption=c)
                        for w, c in zip(waves, captions, strict=True)
                    ],
                    "val/log_mel": [wandb.Image(m, caption=c) for m, c in zip(mels, captions, strict=True)],
                },
            )
        for writer in self.tb_writers(trainer):
            for i, (w, m) in enumerate(zip(waves, mels, strict=True)):
                writer.add_audio(f"val/audio/{i}", w.unsqueeze(0), trainer.global_step, sample_rate=self.rate)
                writer.add_image(f"val/log_mel/{i}", m, trainer.global_step, dataformats="HWC")
            rows = [[i, c] for i, c in enumerate(captions)]
            writer.add_text("val/audio_labels", markdown_table(["#", "labels"], rows), trainer.global_step)
