"""A GPT-2 style decoder-only transformer, readable top to bottom.

Follows GPT-2 (Radford et al. 2019) as laid out in Karpathy's nanoGPT (https://github.com/karpathy/nanoGPT):
token + learned position embeddings, pre-LN blocks with causal SDPA attention, final LayerNorm and an LM head
whose weight is tied to the token embedding. With ``vocab_size=50257, block_size=1024`` the presets give the
textbook parameter counts: GPT-2 small 124,439,808; GPT-2 medium 354,823,168.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bigmodel.nets.transformer import TransformerStack, init_transformer_weights


class GPT(nn.Module):
    """Decoder-only transformer language model.

    Args:
        vocab_size: number of token ids V.
        block_size: context length (size of the position table), in tokens.
        n_layer, n_head, n_embd: depth, heads and width C.
        dropout: dropout on embeddings, attention and residual branches.
        bias: biases in Linear and LayerNorm layers (GPT-2: True).

    Shapes: ``idx`` ``(B, T)`` int64 token ids with ``T <= block_size`` -> logits ``(B, T, V)``.

    Raises:
        ValueError: ``T > block_size`` in ``forward``.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.vocab_size, self.block_size, self.n_layer = vocab_size, block_size, n_layer
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.transformer = TransformerStack(n_layer, n_embd, n_head, dropout, bias, causal=True)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)initialise all weights GPT-2 style; used after materialising a meta-device model."""
        init_transformer_weights(self, self.n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"Sequence length {T} exceeds the model's block_size={self.block_size}.")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        return self.lm_head(self.transformer(x))

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after the prompt ``idx`` ``(B, T0)``; returns ``(B, T0 + max_new_tokens)``.

        ``temperature`` > 0 scales logits; ``top_k`` keeps the k most likely tokens; ``generator`` makes the
        sampling reproducible. The context is cropped to the last ``block_size`` tokens (see
        :func:`sample_tokens`, the loop every backend shares).
        """
        return sample_tokens(self, idx, max_new_tokens, self.block_size, temperature, top_k, generator)


@torch.no_grad()
def sample_tokens(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    idx: torch.Tensor,
    max_new_tokens: int,
    block_size: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The autoregressive sampling loop, around any ``logits_fn``: token ids ``(B, T)`` -> logits
    ``(B, T, V)`` (the eager net, or an exported graph run by ONNX Runtime), so every backend draws the
    same tokens from the same logits and ``generator`` state.

    Each step crops the context to the last ``block_size`` tokens, divides the last position's logits by
    ``temperature`` (floored at 1e-8), keeps the ``top_k`` largest (``top_k=1``: greedy), and draws one
    token with ``torch.multinomial``. Returns ``(B, T0 + max_new_tokens)`` int64 ids.
    """
    for _ in range(max_new_tokens):
        logits = logits_fn(idx[:, -block_size:])[:, -1, :] / max(temperature, 1e-8)
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits, dim=-1)
        nxt = torch.multinomial(probs, num_samples=1, generator=generator)
        idx = torch.cat([idx, nxt.to(idx.device)], dim=1)
    return idx
