"""TEMPORARY glue: a minimal next-token LightningModule so the parity and MFU benchmarks can drive ``gpt_nano``
before the text branch's ``LanguageModelModule`` lands. Swap ``build_lm_module`` for that module then; the
benchmark code around it stays the same."""

from __future__ import annotations

from typing import Any

import hydra
import torch
import torch.nn.functional as F
from lightning import LightningModule


class NextTokenModule(LightningModule):
    """Cross-entropy on ``(x, y)`` token batches ``(B, T)`` with any net mapping ``x`` to logits ``(B, T, V)``;
    logs ``train/loss`` every step like the template's modules."""

    def __init__(self, net: dict[str, Any], lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = hydra.utils.instantiate(net)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


def build_lm_module(net_cfg: dict[str, Any]) -> LightningModule:
    return NextTokenModule(net_cfg)
