"""Attribution pictures of fixed validation samples during training, to W&B and TensorBoard.

The same pictures as ``make explain`` (Captum, :mod:`bigmodel.attribution`): image heatmaps, log-mel
attribution maps, coloured tokens, for the first ``num_samples`` validation inputs (the same ones every
time: validation is not shuffled), every ``every_n_epochs`` validation epochs. Off by default, since
attributions cost several forward/backward passes per sample: add ``callbacks=[default,media_attributions]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer
from PIL import Image

from bigmodel.attribution import render
from bigmodel.attribution.explainer import Explainer, image_baseline
from bigmodel.attribution.inputs import modality_of
from bigmodel.attribution.methods import check_method
from bigmodel.callbacks.media import MediaCallback, label, markdown_table

log = logging.getLogger(__name__)


class MediaAttributions(MediaCallback):
    """Logs ``val/attributions`` (images and audio: one picture per sample; text: a table of token scores).

    Args:
        num_samples: validation inputs explained (the first ones of the validation set).
        method: a Captum method of :data:`bigmodel.attribution.methods.METHODS`.
        every_n_epochs, name: see :class:`MediaCallback`.

    Raises:
        ConfigError: an unknown ``method``, ``every_n_epochs < 1``.
    """

    def __init__(
        self,
        num_samples: int = 4,
        method: str = "integrated_gradients",
        every_n_epochs: int = 1,
        name: str = "media_attributions",
    ) -> None:
        super().__init__(every_n_epochs, name)
        self.num_samples, self.method = int(num_samples), check_method(method)
        self._x: list[torch.Tensor] = []
        self._y: list[torch.Tensor] = []

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._x, self._y = [], []

    def collect(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        have = sum(len(x) for x in self._x)
        if have < self.num_samples:
            self._x.append(batch[0][: self.num_samples - have].detach().cpu().clone())
            self._y.append(batch[1][: self.num_samples - have].detach().cpu().clone())

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._x:
            return
        dm = trainer.datamodule
        modality = modality_of(dm)
        was_training, device = pl_module.training, pl_module.device
        # validation runs under inference mode; attributions need gradients, on the CPU copy of the inputs
        with torch.inference_mode(False), torch.enable_grad():
            pl_module.eval().cpu()
            try:
                x, y = torch.cat([t.clone() for t in self._x]), torch.cat(self._y)
                base = image_baseline(dm, x) if modality == "image" else None
                ex = Explainer(pl_module, modality, self.method, base)
                z = ex.space(x)
                pred = ex.logits(z).argmax(-1)
                attr = ex.attribute(z, pred)
            finally:
                pl_module.to(device).train(was_training)
        names = [str(c) for c in getattr(dm, "classes", None) or range(int(pred.max()) + 1)]
        out = (
            Path(trainer.log_dir or trainer.default_root_dir) / "attributions" / f"step_{trainer.global_step}"
        )
        if modality == "text":
            self._emit_text(trainer, pl_module, z, attr, pred, y, names)
            return
        pictures = []
        for i in range(len(z)):
            title = f"true {label(names, int(y[i]))}, pred {label(names, int(pred[i]))}"
            path = out / f"{i:02d}.png"
            if modality == "image":
                render.image_figure(z[i].numpy(), attr[i].numpy(), title, path)
            else:
                fe = pl_module.frontend
                render.audio_figure(
                    z[i].numpy(), attr[i].numpy(), 1000 * fe.hop_length / fe.sample_rate_hz, title, path
                )
            pictures.append((np.array(Image.open(path).convert("RGB")), title))
        for tb in self.tb_writers(trainer):
            for i, (img, _) in enumerate(pictures):
                tb.add_image(f"val/attributions/{i}", img, trainer.global_step, dataformats="HWC")
        if self.wandb_runs(trainer):
            import wandb

            self.wandb_log(
                trainer, {"val/attributions": [wandb.Image(img, caption=c) for img, c in pictures]}
            )

    def _emit_text(self, trainer, pl_module, ids, attr, pred, y, names) -> None:
        tok = trainer.datamodule.tokenizer
        pad = int(getattr(pl_module.net, "pad_id", 0))
        rows = []
        for i in range(len(ids)):
            real = ids[i] != pad
            pieces = [
                f"{tok.decode([int(t)])}({float(s):+.2f})"
                for t, s in zip(ids[i][real], attr[i][real], strict=True)
            ]
            rows.append([label(names, int(y[i])), label(names, int(pred[i])), " ".join(pieces)])
        for tb in self.tb_writers(trainer):
            tb.add_text(
                "val/attributions",
                markdown_table(["true", "pred", "token(score)"], rows),
                trainer.global_step,
            )
        if self.wandb_runs(trainer):
            import wandb

            self.wandb_log(
                trainer, {"val/attributions": wandb.Table(columns=["true", "pred", "tokens"], data=rows)}
            )
