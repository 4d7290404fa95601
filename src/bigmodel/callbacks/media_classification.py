"""Classification media: a confusion matrix and a per-class precision/recall/F1 table."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from bigmodel.callbacks.media import MediaCallback, class_names, heatmap, markdown_table, step_outputs
from bigmodel.utils.errors import ConfigError


def per_class_metrics(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """The ``(K, K)`` confusion matrix (rows: true class, columns: predicted class) and per-class
    precision, recall, F1 and support of ``(N,)`` int64 class ids, from torchmetrics'
    ``MulticlassConfusionMatrix`` and ``MulticlassPrecision/Recall/F1Score(average=None)``. A class never
    predicted (or never present) gets 0, not NaN (torchmetrics' ``zero_division=0``)."""
    confusion = MulticlassConfusionMatrix(num_classes)(preds, target)
    return {
        "confusion": confusion,
        "precision": MulticlassPrecision(num_classes, average=None)(preds, target),
        "recall": MulticlassRecall(num_classes, average=None)(preds, target),
        "f1": MulticlassF1Score(num_classes, average=None)(preds, target),
        "support": confusion.sum(dim=1),
    }


class MediaClassification(MediaCallback):
    """Logs, over each selected validation epoch (rank 0's share of the validation set under DDP):

    - ``val/confusion_matrix``: W&B's interactive confusion-matrix chart (``wandb.plot.confusion_matrix``);
      TensorBoard: a heatmap image (rows true, columns predicted, brighter = more).
    - ``val/per_class``: a table ``class, precision, recall, f1, support``; TensorBoard: Markdown text.

    Needs a validation step returning ``{"preds", "target", ...}`` (like ``ClassificationModule``).

    Args:
        every_n_epochs: see :class:`MediaCallback`.
        max_classes: above this many classes the matrix is skipped (the table is still logged).
        max_samples: at most this many predictions are kept per epoch (bounds memory).

    Raises:
        ConfigError: bounds out of range, or (at the first batch) a step without ``preds``/``target``.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        max_classes: int = 100,
        max_samples: int = 200_000,
        name: str = "media_classification",
    ) -> None:
        super().__init__(every_n_epochs, name)
        if int(max_classes) < 2 or int(max_samples) < 1:
            raise ConfigError(f"callbacks.{name}: max_classes must be >= 2 and max_samples >= 1.")
        self.max_classes, self.max_samples = int(max_classes), int(max_samples)
        self.preds: list[torch.Tensor] = []
        self.target: list[torch.Tensor] = []
        self._kept = 0
        self._num_classes = 0

    def reset(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.preds, self.target, self._kept, self._num_classes = [], [], 0, 0

    def collect(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        preds, target = step_outputs(outputs, self.name)
        if isinstance(outputs.get("logits"), torch.Tensor):  # K from the logits' width, when returned
            self._num_classes = max(self._num_classes, int(outputs["logits"].shape[-1]))
        room = self.max_samples - self._kept
        if room > 0:
            self.preds.append(preds[:room])
            self.target.append(target[:room])
            self._kept += min(room, len(preds))

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.preds:
            return
        preds, target = torch.cat(self.preds).long(), torch.cat(self.target).long()
        k = max(self._num_classes, int(max(preds.max(), target.max())) + 1)
        names = class_names(trainer, k)[:k]
        stats = per_class_metrics(preds, target, k)
        confusion = stats["confusion"].numpy()
        rows = [
            [
                names[i],
                round(float(stats["precision"][i]), 4),
                round(float(stats["recall"][i]), 4),
                round(float(stats["f1"][i]), 4),
                int(stats["support"][i]),
            ]
            for i in range(k)
        ]
        header = ["class", "precision", "recall", "f1", "support"]
        with_matrix = k <= self.max_classes
        if self.wandb_runs(trainer):
            import wandb

            data: dict[str, Any] = {"val/per_class": wandb.Table(columns=header, data=rows)}
            if with_matrix:
                data["val/confusion_matrix"] = wandb.plot.confusion_matrix(
                    y_true=target.tolist(), preds=preds.tolist(), class_names=names, title="validation"
                )
            self.wandb_log(trainer, data)
        for writer in self.tb_writers(trainer):
            if with_matrix:
                cell = max(4, 256 // k)
                img = np.kron(heatmap(confusion), np.ones((cell, cell, 1), dtype=np.uint8))
                writer.add_image("val/confusion_matrix", img, trainer.global_step, dataformats="HWC")
            writer.add_text("val/per_class", markdown_table(header, rows), trainer.global_step)
