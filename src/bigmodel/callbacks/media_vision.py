"""Vision media: a grid of validation images with true/predicted labels, and the misclassified ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer

from bigmodel.callbacks.media import (
    MediaCallback,
    class_names,
    label,
    markdown_table,
    step_outputs,
    to_uint8_image,
)


class MediaVision(MediaCallback):
    """Logs ``val/samples`` (the first ``max_images`` validation images, the same ones every time, so their
    predictions can be compared over epochs) and ``val/misclassified`` (up to ``max_misclassified`` wrong
    predictions), each captioned ``true: <name> / pred: <name>``.

    Needs batches ``(x, y, ...)`` with ``x`` of shape ``(B, C, H, W)`` and a validation step returning
    ``{"preds", "target", ...}`` (like ``ClassificationModule``). Images are min-max scaled per image and
    enlarged to at least ``min_size_px`` pixels. W&B: lists of ``wandb.Image``. TensorBoard: one grid
    image per key plus a Markdown table of the labels (``<key>_labels``).

    Args:
        every_n_epochs: see :class:`MediaCallback`.
        max_images, max_misclassified: bounds on the images kept (1..256 each).
        min_size_px: smallest side of each logged image, in pixels.

    Raises:
        ConfigError: bounds out of range, or (at the first batch) a step without ``preds``/``target``.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        max_images: int = 32,
        max_misclassified: int = 32,
        min_size_px: int = 64,
        name: str = "media_vision",
    ) -> None:
        super().__init__(every_n_epochs, name)
        from bigmodel.utils.errors import ConfigError

        for key, v in (("max_images", max_images), ("max_misclassified", max_misclassified)):
            if not 1 <= int(v) <= 256:
                raise ConfigError(
                    f"callbacks.{name}.{key}={v}: use 1..256 (W&B and TensorBoard pages stay usable)."
                )
        self.max_images, self.max_misclassified, self.min_size_px = (
            int(max_images),
            int(max_misclassified),
            min_size_px,
        )
        self.samples: list[tuple[torch.Tensor, int, int]] = []
        self.wrong: list[tuple[torch.Tensor, int, int]] = []

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.samples, self.wrong = [], []

    def collect(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        if len(self.samples) >= self.max_images and len(self.wrong) >= self.max_misclassified:
            return
        preds, target = step_outputs(outputs, self.name)
        x = batch[0].detach()
        for i in range(min(len(x), len(preds))):
            item = (x[i].cpu(), int(target[i]), int(preds[i]))
            if len(self.samples) < self.max_images:
                self.samples.append(item)
            if item[1] != item[2] and len(self.wrong) < self.max_misclassified:
                self.wrong.append(item)

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        num = 1 + max([max(t, p) for _, t, p in self.samples + self.wrong], default=0)
        names = class_names(trainer, num)
        groups = {"val/samples": self.samples, "val/misclassified": self.wrong}
        captions = {
            k: [f"true: {label(names, t)} / pred: {label(names, p)}" for _, t, p in v]
            for k, v in groups.items()
        }
        images = {k: [to_uint8_image(x, self.min_size_px) for x, _, _ in v] for k, v in groups.items()}
        if self.wandb_runs(trainer):
            import wandb

            self.wandb_log(
                trainer,
                {
                    k: [wandb.Image(im, caption=c) for im, c in zip(images[k], captions[k], strict=True)]
                    for k in groups
                    if images[k]
                },
            )
        for writer in self.tb_writers(trainer):
            for key in groups:
                if not images[key]:
                    continue
                writer.add_image(key, _grid(images[key]), trainer.global_step, dataformats="HWC")
                rows = [[i, c] for i, c in enumerate(captions[key])]
                writer.add_text(f"{key}_labels", markdown_table(["#", "labels"], rows), trainer.global_step)


def _grid(images: list[np.ndarray], ncol: int = 8, pad: int = 2) -> np.ndarray:
    """Images (HWC uint8) tiled row-major, ``ncol`` per row, ``pad`` white pixels apart; smaller images
    are padded with white to the largest height and width."""
    import torchvision

    h, w = max(im.shape[0] for im in images), max(im.shape[1] for im in images)
    padded = [
        np.pad(im, ((0, h - im.shape[0]), (0, w - im.shape[1]), (0, 0)), constant_values=255) for im in images
    ]
    t = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in padded])
    return torchvision.utils.make_grid(t, nrow=ncol, padding=pad, pad_value=255).permute(1, 2, 0).numpy()
