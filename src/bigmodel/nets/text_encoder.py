"""A BERT-style transformer encoder for sentence classification, trained from scratch.

Token + learned position embeddings, the shared pre-LN blocks (:mod:`bigmodel.nets.transformer`, not
causal, padding masked out of attention), then ``[CLS]`` or mean pooling and a linear head
(Devlin et al. 2019, https://arxiv.org/abs/1810.04805).
"""

from __future__ import annotations

import torch
from torch import nn

from bigmodel.nets.transformer import TransformerStack, init_transformer_weights, pool_tokens


class TextEncoder(nn.Module):
    """Transformer encoder + pooling + linear classifier.

    Args:
        vocab_size: embedding rows (>= the tokenizer's vocabulary).
        num_classes: K.
        max_length: longest input in tokens (size of the position table, plus one for ``[CLS]``).
        n_layer, n_head, n_embd: depth, heads and width C.
        dropout: dropout in the blocks and before the head.
        pooling: ``cls`` (a learned ``[CLS]`` vector prepended to every sequence) or ``mean`` (over real tokens).
        pad_id: the padding token id; those positions are masked out of attention and pooling.

    Shapes: ``x`` ``(B, T)`` int64 token ids, right-padded with ``pad_id``, ``T <= max_length`` -> logits ``(B, K)``.

    Raises:
        ValueError: an unknown ``pooling``; ``T > max_length`` in ``forward``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_length: int = 128,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        pooling: str = "cls",
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} is not one of: cls, mean.")
        self.pooling, self.pad_id, self.max_length = pooling, pad_id, max_length
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(max_length + 1, n_embd)
        self.cls = nn.Parameter(torch.zeros(1, 1, n_embd))
        self.drop = nn.Dropout(dropout)
        self.encoder = TransformerStack(n_layer, n_embd, n_head, dropout, causal=False)
        self.head = nn.Linear(n_embd, num_classes)
        init_transformer_weights(self, n_layer)
        nn.init.normal_(self.cls, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape
        if T > self.max_length:
            raise ValueError(f"Input of {T} tokens exceeds max_length={self.max_length}.")
        mask = x != self.pad_id
        mask[:, 0] |= ~mask.any(dim=1)  # an all-padding row would make attention NaN
        h = self.wte(x)
        if self.pooling == "cls":
            h = torch.cat([self.cls.expand(B, -1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(B, 1), mask], dim=1)
        h = self.drop(h + self.wpe(torch.arange(h.size(1), device=x.device)))
        h = self.encoder(h, key_padding_mask=mask)
        return self.head(self.drop(pool_tokens(h, mask, self.pooling)))
