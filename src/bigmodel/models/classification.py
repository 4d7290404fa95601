"""Generic classification LightningModule: wraps any net, owns loss, metrics and optimizer."""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from bigmodel.models.build import instantiate_part
from bigmodel.models.optim import build_optimizer, build_scheduler
from bigmodel.utils.compile import compile_net
from bigmodel.utils.config import to_plain
from bigmodel.utils.init_from import init_net_from, pop_init_keys
from bigmodel.utils.log_steps import is_logging_step
from bigmodel.utils.strategies import clip_gradients


class ClassificationModule(LightningModule):
    """Cross-entropy classification of ``(x, y)`` batches with any net.

    The net (and optional ``frontend``, e.g. log-mel features) is built here from its Hydra config,
    so the checkpoint's hyper-parameters are plain data and ``load_from_checkpoint`` rebuilds it.

    Args:
        net: Hydra config (``_target_`` + kwargs) of an ``nn.Module`` mapping ``x`` to logits ``(B, K)``.
        optimizer: ``_partial_: true`` optimizer config, e.g. ``torch.optim.AdamW``.
        num_classes: K, the number of classes.
        scheduler: optional ``{scheduler: <_partial_ config>, interval: step|epoch, monitor: ...}``.
        frontend: optional Hydra config of an ``nn.Module`` applied to ``x`` on the device before the
            net (train and eval; it sees ``self.training`` for train-only augmentation).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        compile: ``true`` (or a dict of ``torch.compile`` kwargs, e.g. ``{mode: max-autotune}``) compiles the
            inner net in place (``nn.Module.compile``) in ``configure_model``; the LightningModule stays
            uncompiled and state-dict keys stay plain (no ``_orig_mod.``), so checkpoints load without it.
        per_class_acc: also log the test accuracy of each class, ``test/acc_<class name>``.

    ``net`` may also hold ``init_from`` (a checkpoint), ``init_strict`` and ``init_prefix_map``: the net is
    then initialised from that checkpoint (:mod:`bigmodel.utils.init_from`). They are left out of the saved
    hyper-parameters, so loading this module's own checkpoint never needs the other run's file.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/f1``, ``val/acc_best``,
    ``test/loss``, ``test/acc``, ``test/f1`` (accuracy is micro, F1 is macro over classes), and with
    ``per_class_acc`` one ``test/acc_<class>`` per class (name sanitised to ``[A-Za-z0-9_.-]``).

    Raises:
        ConfigError: the net or frontend rejects its arguments (``model.net: ...``, ``model.frontend: ...``).
    """

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        num_classes: int,
        scheduler: dict[str, Any] | None = None,
        frontend: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        compile: bool | dict[str, Any] = False,
        per_class_acc: bool = True,
    ) -> None:
        super().__init__()
        net, init = pop_init_keys(to_plain(net))
        self.save_hyperparameters(
            {
                "net": net,
                "optimizer": to_plain(optimizer),
                "num_classes": num_classes,
                "scheduler": to_plain(scheduler),
                "frontend": to_plain(frontend),
                "label_smoothing": label_smoothing,
                "compile": to_plain(compile),
                "per_class_acc": per_class_acc,
            }
        )
        self.net = instantiate_part(self.hparams.net, "model.net")
        if init:
            init_net_from(self.net, **init)
        self.frontend = instantiate_part(self.hparams.frontend, "model.frontend") if frontend else None
        self.class_names: list[str] | None = None
        # no argument checks on the hot path: cross_entropy has already rejected out-of-range targets
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        for stage in ("val", "test"):
            setattr(self, f"{stage}_loss", MeanMetric())
            setattr(self, f"{stage}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{stage}_f1", MulticlassF1Score(num_classes, average="macro"))
        self.val_acc_best = MaxMetric()
        self.test_acc_per_class = MulticlassAccuracy(num_classes, average=None) if per_class_acc else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for inputs ``x``."""
        if self.frontend is not None:
            x = self.frontend(x)
        return self.net(x)

    def configure_model(self) -> None:
        compile_net(self.net, self.hparams.get("compile"))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)  # Lightning calls setup, so a Trainer is attached
        if getattr(dm, "classes", None) is not None:
            self.class_names = [str(c) for c in dm.classes]

    def on_train_start(self) -> None:
        self.val_acc_best.reset()

    def _step(self, batch: Any, stage: str, batch_idx: int = 0) -> dict[str, torch.Tensor]:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        preds = logits.argmax(dim=-1)
        acc = getattr(self, f"{stage}_acc")
        # update(), not forward(): forward also computes a per-batch value and deep-copies the metric state,
        # which is most of the template's per-step overhead for small nets (see `make bench`, parity)
        acc.update(preds, y)
        if stage == "train":
            # Only on the steps Lightning writes (every trainer.log_every_n_steps): each self.log call costs
            # its result collection a device move (~0.3 ms on CPU), wasted on the steps it drops. train/acc
            # is logged once per epoch in on_train_epoch_end (a Metric object logged per step costs more).
            if is_logging_step(self.trainer, batch_idx):
                self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        else:
            self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
            mean_loss, f1 = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_f1")
            mean_loss.update(loss.detach(), weight=y.numel())
            f1.update(preds, y)
            self.log(f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
            self.log(f"{stage}/f1", f1, on_step=False, on_epoch=True)
            if stage == "test" and self.test_acc_per_class is not None:
                self.test_acc_per_class.update(preds, y)
        return {"loss": loss, "preds": preds.detach(), "target": y, "logits": logits.detach()}

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "train", batch_idx)

    def on_train_epoch_end(self) -> None:
        if self.train_acc.update_count:  # compute() syncs over processes under DDP
            self.log("train/acc", self.train_acc.compute(), prog_bar=True)
            self.train_acc.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int = 0) -> torch.Tensor | None:
        """Class probabilities ``(B, K)`` (softmax of the logits) for a batch ``x`` or ``(x, ...)``;
        ``None`` for an empty batch (every input of it unreadable, see ``bigmodel.predict``)."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return None if x is None else F.softmax(self(x).float(), dim=-1)

    def on_test_epoch_end(self) -> None:
        if self.test_acc_per_class is None:
            return
        per_class = self.test_acc_per_class.compute()
        self.test_acc_per_class.reset()
        names = self.class_names or [str(i) for i in range(len(per_class))]
        for name, acc in zip(names, per_class, strict=False):
            self.log(f"test/acc_{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(name))}", acc)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.hparams.optimizer, self.parameters())
        scheduler = build_scheduler(
            self.hparams.scheduler,
            optimizer,
            int(self.trainer.estimated_stepping_batches),
            self.trainer.max_epochs,
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler} if scheduler else {"optimizer": optimizer}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What inference needs beyond the weights: the class names, as plain strings.
        checkpoint["class_names"] = self.class_names

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.class_names = checkpoint.get("class_names")
