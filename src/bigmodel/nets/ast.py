"""An Audio Spectrogram Transformer (AST-style) on log-mel patches, built from the shared pre-LN blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bigmodel.nets.transformer import TransformerStack, init_transformer_weights


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class AST(nn.Module):
    """AST-style classifier (Gong et al. 2021, https://arxiv.org/abs/2104.01778): the log-mel spectrogram
    is cut into (possibly overlapping) patches, each linearly projected to ``n_embd``; a learned [CLS]
    token and learned 2-D position embeddings are added; pre-LN transformer blocks
    (``bigmodel.nets.transformer``) encode the sequence and a linear head reads the [CLS] token.
    Trained from scratch here (no ImageNet initialisation).

    Args:
        num_classes: output logits.
        n_mels: mel bands of the input (the frontend's ``n_mels``); fixes the frequency patch grid.
        max_frames: longest input in frames; sizes the position table (shorter inputs use a prefix).
        patch_size: patch (mel bins, frames), an int for square patches.
        patch_stride: patch stride (mel bins, frames); default ``patch_size`` (no overlap). AST uses
            16x16 patches with stride 10.
        n_layer, n_head, n_embd: depth, heads and width C.
        dropout: dropout on embeddings, attention and residual branches.

    Shapes: input ``(B, n_mels, frames)`` (or ``(B, 1, n_mels, frames)``); output ``(B, num_classes)``.
    Inputs shorter than one patch are zero-padded in time.

    Raises:
        ValueError: a patch larger than ``n_mels`` or ``max_frames``, or ``n_embd`` not divisible by
            ``n_head``; in ``forward``, an input with other than ``n_mels`` bands or more than
            ``max_frames`` frames.
    """

    def __init__(
        self,
        num_classes: int,
        n_mels: int,
        max_frames: int = 512,
        patch_size: int | Sequence[int] = 8,
        patch_stride: int | Sequence[int] | None = None,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_mels, self.max_frames = n_mels, max_frames
        self.patch = _pair(patch_size)
        self.stride = _pair(patch_stride) if patch_stride is not None else self.patch
        if self.patch[0] > n_mels or self.patch[1] > max_frames:
            raise ValueError(
                f"patch_size={list(self.patch)} is larger than the input (n_mels={n_mels}, "
                f"max_frames={max_frames}); use smaller patches."
            )
        self.grid_f = (n_mels - self.patch[0]) // self.stride[0] + 1
        grid_t_max = (max_frames - self.patch[1]) // self.stride[1] + 1
        self.patch_embed = nn.Conv2d(1, n_embd, kernel_size=self.patch, stride=self.stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_embd, self.grid_f, grid_t_max))
        self.pos_cls = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.drop = nn.Dropout(dropout)
        self.encoder = TransformerStack(n_layer, n_embd, n_head, dropout=dropout, causal=False)
        self.head = nn.Linear(n_embd, num_classes)
        init_transformer_weights(self, n_layer)
        for p in (self.cls_token, self.pos_embed, self.pos_cls):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        _, _, f, t = x.shape
        if f != self.n_mels:
            raise ValueError(f"AST was built for n_mels={self.n_mels}; got {f} bands.")
        if t > self.max_frames:
            raise ValueError(
                f"Input has {t} frames, more than max_frames={self.max_frames}; raise max_frames "
                "or shorten the clips."
            )
        if t < self.patch[1]:
            x = F.pad(x, (0, self.patch[1] - t))
        tokens = self.patch_embed(x)  # (B, C, grid_f, grid_t)
        tokens = tokens + self.pos_embed[:, :, :, : tokens.shape[-1]]
        tokens = tokens.flatten(2).transpose(1, 2)  # (B, grid_f * grid_t, C)
        cls = (self.cls_token + self.pos_cls).expand(tokens.shape[0], -1, -1)
        h = self.encoder(self.drop(torch.cat([cls, tokens], dim=1)))
        return self.head(h[:, 0])
