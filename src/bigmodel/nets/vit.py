"""A Vision Transformer built from the project's pre-LN transformer blocks.

Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021 (https://arxiv.org/abs/2010.11929):
the image is cut into non-overlapping ``patch_size`` x ``patch_size`` patches, each linearly embedded
(a strided conv), a learned [CLS] token and learned position embeddings are added, and the
[CLS] output (or the mean over patches) feeds a linear head. Small patches (4 for 32x32 images) suit
small images; ``patch_size=16, n_embd=768, n_layer=12, n_head=12`` is ViT-B/16.
"""

from __future__ import annotations

import torch
from torch import nn

from bigmodel.nets.transformer import TransformerStack, init_transformer_weights


class ViT(nn.Module):
    """ViT classifier. Input ``(B, C, H, W)`` with ``H = W = image_size``; output logits ``(B, num_classes)``.

    Args:
        in_channels: input channels C.
        num_classes: output logits.
        image_size: input height and width in pixels; must be divisible by ``patch_size``.
        patch_size: patch height and width in pixels; the sequence has ``(image_size / patch_size)**2``
            patches (+1 [CLS] token).
        n_layer, n_embd, n_head: transformer depth, width and heads.
        dropout: dropout in attention, MLP and after the embeddings.
        pooling: ``cls`` (the [CLS] token's output) or ``mean`` (mean over patch outputs).

    Raises:
        ValueError: ``image_size`` not divisible by ``patch_size``, an unknown ``pooling``, or ``n_embd``
            not divisible by ``n_head``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        patch_size: int = 4,
        n_layer: int = 6,
        n_embd: int = 192,
        n_head: int = 3,
        dropout: float = 0.0,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(
                f"patch_size={patch_size} must divide image_size={image_size} "
                f"(e.g. {[p for p in (2, 4, 7, 8, 14, 16) if image_size % p == 0]})."
            )
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} is not one of: cls, mean.")
        self.pooling = pooling
        n_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, n_embd, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, n_embd))
        self.drop = nn.Dropout(dropout)
        self.transformer = TransformerStack(n_layer, n_embd, n_head, dropout, bias=True, causal=False)
        self.head = nn.Linear(n_embd, num_classes)
        init_transformer_weights(self, n_layer)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.zeros_(self.head.weight)  # a zero head starts at uniform predictions, as in the paper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, N, n_embd)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.transformer(self.drop(x))
        return self.head(x[:, 0] if self.pooling == "cls" else x[:, 1:].mean(dim=1))
