"""Transformer building blocks shared by every transformer net here (GPT, text encoder, ViT, AST).

Pre-LayerNorm blocks as in GPT-2 (Radford et al. 2019, https://cdn.openai.com/better-language-models/
language_models_are_unsupervised_multitask_learners.pdf); attention goes through
``torch.nn.functional.scaled_dot_product_attention`` so the fused/flash kernels are used when available.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention.

    Args:
        n_embd: model width C; must be divisible by ``n_head``.
        n_head: number of heads H (head size C / H).
        dropout: dropout on attention weights (training only) and on the output projection.
        bias: bias in the linear layers.
        causal: mask future positions (decoder) or not (encoder).

    Shapes: ``x`` ``(B, T, C)`` -> ``(B, T, C)``. ``key_padding_mask`` ``(B, T)`` bool, True = real token.

    Raises:
        ValueError: ``n_embd`` not divisible by ``n_head``.
    """

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, causal: bool = False
    ):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}.")
        self.n_head, self.causal, self.dropout = n_head, causal, dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, H, T, C/H)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and mask is None,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(C, 4C) -> GELU -> Linear(4C, C) -> dropout. ``(B, T, C)`` -> same."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True, expansion: int = 4):
        super().__init__()
        self.fc = nn.Linear(n_embd, expansion * n_embd, bias=bias)
        self.act = nn.GELU()
        self.proj = nn.Linear(expansion * n_embd, n_embd, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``.

    This is the unit FSDP auto-wraps and activation checkpointing targets. Args as in
    :class:`SelfAttention`. Shapes: ``(B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, causal: bool = False
    ):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, dropout, bias, causal)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_padding_mask)
        return x + self.mlp(self.ln_2(x))


class TransformerStack(nn.Module):
    """``n_layer`` blocks followed by a final LayerNorm. ``(B, T, C)`` -> ``(B, T, C)``."""

    def __init__(
        self,
        n_layer: int,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias, causal) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, key_padding_mask)
        return self.ln_f(x)


def init_transformer_weights(module: nn.Module, n_layer: int, std: float = 0.02) -> None:
    """GPT-2 initialisation: N(0, 0.02) for Linear/Embedding weights, zero biases, and residual output
    projections (``*.proj``) scaled by 1/sqrt(2 * n_layer). Call as ``net.apply(...)`` via a lambda or
    once on the root; a no-op for tensors on the meta device."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            s = std / (2 * n_layer) ** 0.5 if name.endswith(("attn.proj", "mlp.proj")) else std
            nn.init.normal_(m.weight, mean=0.0, std=s)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=std)


def pool_tokens(h: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Sequence representation from token states ``h`` ``(B, T, C)`` -> ``(B, C)``: the first token
    (``cls``) or the mean over real tokens (``mean``; ``mask`` ``(B, T)`` bool, True = real token)."""
    if pooling == "cls":
        return h[:, 0]
    if mask is None:
        return h.mean(1)
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1)
