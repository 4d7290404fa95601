"""One interface over the three modalities, so the faithfulness checks and the pictures need no per-modality
branches: the space attributed (normalised pixels, log-mel features, token ids), the model on that space,
and the "units" a deletion test removes (pixels, frames, tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bigmodel.attribution import methods as M


@dataclass
class Explainer:
    """Attributions of ``module`` (a loaded ClassificationModule, eval mode) for one ``modality``.

    Args:
        module: the model; ``module(x)`` maps a preprocessed batch to logits ``(B, K)``.
        modality: ``image`` | ``audio`` | ``text``.
        method: one of :data:`bigmodel.attribution.methods.METHODS`.
        image_baseline: the normalised black image ``(1, C, H, W)`` (images only).
    """

    module: nn.Module
    modality: str
    method: str
    image_baseline: torch.Tensor | None = None

    def space(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor attributed: images as they are, waveforms -> log-mel ``(B, n_mels, frames)``, ids."""
        return M.log_mel(self.module, x) if self.modality == "audio" else x

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of the model applied to ``z`` in :meth:`space`."""
        with torch.no_grad():
            return (self.module.net if self.modality == "audio" else self.module)(z)

    def attribute(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Attributions shaped like ``z`` (text: ``(B, T)``)."""
        if self.modality == "image":
            base = self.image_baseline if self.image_baseline is not None else torch.zeros_like(z[:1])
            return M.image_attributions(self.module, z, target, self.method, base).detach()
        if self.modality == "audio":
            return M.audio_attributions(self.module, z, target, self.method).detach()
        return M.text_attributions(self.module.net, z, target, self.method)

    def unit_scores(self, attr: torch.Tensor) -> torch.Tensor:
        """``(B, U)`` importance per unit: pixel (summed over channels), frame (summed over mel bands), token."""
        if self.modality == "image":
            return attr.sum(dim=1).flatten(1)
        if self.modality == "audio":
            return attr.sum(dim=1)
        return attr

    def valid(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, U)`` units that may be removed (text: real tokens, not padding)."""
        if self.modality == "text":
            return z != int(getattr(self.module.net, "pad_id", 0))
        n = z.shape[-1] * z.shape[-2] if self.modality == "image" else z.shape[-1]
        return torch.ones(z.shape[0], n, dtype=torch.bool)

    def remove(self, z: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """``z`` with the ``(B, U)`` boolean ``units`` removed: pixels set to black, frames to the mean
        (0) of the normalised log-mel, tokens to padding (which attention then ignores)."""
        z = z.clone()
        if self.modality == "image":
            b, c, h, w = z.shape
            m = units.view(b, 1, h, w).expand(-1, c, -1, -1)
            base = (
                self.image_baseline if self.image_baseline is not None else torch.zeros_like(z[:1])
            ).expand_as(z)
            return torch.where(m, base, z)
        if self.modality == "audio":
            return z.masked_fill(units.unsqueeze(1), 0.0)
        return z.masked_fill(units, int(getattr(self.module.net, "pad_id", 0)))


def image_baseline(datamodule: Any, like: torch.Tensor) -> torch.Tensor:
    """The black image after the DataModule's normalisation, ``(1, C, H, W)``."""
    black = torch.zeros(1, *like.shape[1:], dtype=torch.uint8)
    return datamodule.normalize(black) if hasattr(datamodule, "normalize") else black.float()
