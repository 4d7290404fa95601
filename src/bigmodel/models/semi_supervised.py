"""FixMatch semi-supervised classification: a few labels plus many unlabelled samples.

Follows FixMatch (Sohn et al. 2020, "FixMatch: Simplifying Semi-Supervised Learning with Consistency and
Confidence", https://arxiv.org/abs/2001.07685, Algorithm 1): the model's prediction on a weakly augmented
unlabelled sample becomes a hard pseudo-label when its confidence reaches ``threshold``, and the model is
trained to predict that label on a strongly augmented view of the same sample.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bigmodel.models.classification import ClassificationModule
from bigmodel.utils.errors import ConfigError


def fixmatch_loss(
    logits_x: torch.Tensor,
    y: torch.Tensor,
    logits_weak: torch.Tensor,
    logits_strong: torch.Tensor,
    threshold: float,
    lambda_u: float,
    label_smoothing: float = 0.0,
    align: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``L = CE(logits_x, y) + lambda_u * mean_b(mask_b * CE(logits_strong_b, argmax softmax(logits_weak_b)))``
    with ``mask_b = max softmax(logits_weak_b) >= threshold`` (Sohn et al. 2020, eq. 2-4). The mean runs
    over *all* ``mu*B`` unlabelled samples, not only the confident ones, as in the paper.

    Args:
        logits_x: ``(B, K)`` logits of the labelled batch; ``y`` ``(B,)`` its labels.
        logits_weak: ``(mu*B, K)`` logits of the weak views; no gradient flows through them.
        logits_strong: ``(mu*B, K)`` logits of the strong views.
        threshold: confidence ``tau`` in (0, 1].
        lambda_u: weight of the unlabelled term.
        align: optional ``(K,)`` distribution-alignment factor ``p_target / p_model`` (ReMixMatch,
            Berthelot et al. 2020, https://arxiv.org/abs/1911.09785, sec. 3.2): the weak-view probabilities
            are multiplied by it and renormalised before the confidence and argmax are taken.

    Returns:
        ``loss``, ``loss_x``, ``loss_u`` (scalars), ``mask`` ``(mu*B,)`` float 0/1 and ``pseudo`` ``(mu*B,)``
        int64 pseudo-labels.
    """
    loss_x = F.cross_entropy(logits_x, y, label_smoothing=label_smoothing)
    probs = torch.softmax(logits_weak.detach().float(), dim=-1)
    if align is not None:
        probs = probs * align.to(probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    conf, pseudo = probs.max(dim=-1)
    mask = (conf >= threshold).float()
    loss_u = (F.cross_entropy(logits_strong, pseudo, reduction="none") * mask).mean()
    return {
        "loss": loss_x + lambda_u * loss_u,
        "loss_x": loss_x,
        "loss_u": loss_u,
        "mask": mask,
        "pseudo": pseudo,
    }


class SemiSupervisedModule(ClassificationModule):
    """:class:`ClassificationModule` (same net, frontend, metrics, optimizer and checkpoints) trained with
    FixMatch on ``{"labeled": (x, y, ...), "unlabeled": (x_weak, x_strong, y_hidden)}`` batches.

    Each step takes ``B`` labelled and ``mu*B`` unlabelled samples (the DataModule's CombinedLoader; see
    :meth:`bigmodel.data.base.BaseDataModule.enable_unlabeled`). Labelled, weak and strong inputs go through
    the net in one forward when their shapes match (as in the paper, so BatchNorm sees one batch).
    With a ``frontend`` (audio log-mel), the weak views are featurised with its augmentation off and the
    labelled and strong views with it on (noise + SpecAugment = the strong audio augmentation).

    ``y_hidden`` (the unlabelled samples' true labels, ``-1`` where unknown) only feeds the
    ``train/pseudo_label_acc`` monitor; it never reaches the loss.

    Args:
        mu: unlabelled samples per labelled one in a step (paper: 7).
        threshold: pseudo-label confidence ``tau`` in (0, 1] (paper: 0.95).
        lambda_u: weight of the unlabelled loss (paper: 1).
        dist_align: distribution alignment (ReMixMatch): scale the weak-view probabilities by
            ``uniform / p_model`` before thresholding, where ``p_model`` is a running mean (momentum
            ``dist_align_momentum`` per step) of the model's weak-view class distribution. It stops a few
            classes from absorbing the pseudo-labels. ``p_model`` is kept in float32 (a bf16 buffer would
            round the 0.001 updates away) outside the state dict, so the checkpoint's weights load into a
            plain classifier; it travels in ``checkpoint["semi_supervised"]["p_model"]`` so a resumed run
            continues from it. Under DDP each rank averages its own batches (not synchronised).
        dist_align_momentum: per-step momentum of ``p_model``, in [0, 1).
        **kwargs: see :class:`ClassificationModule`.

    Logs ``train/loss``, ``train/loss_x``, ``train/loss_u``, ``train/mask_rate`` (fraction of unlabelled
    samples above the threshold), ``train/pseudo_label_acc`` (accuracy of the pseudo-labels that passed the
    threshold, against the hidden labels) and everything :class:`ClassificationModule` logs.

    Raises:
        ConfigError: ``threshold`` outside (0, 1], ``mu`` < 1, ``lambda_u`` < 0, ``dist_align`` not a
            boolean or ``dist_align_momentum`` not a number in [0, 1) at construction; a
            DataModule without an unlabelled pool when fitting starts (in ``setup``, before any step).
    """

    def __init__(
        self,
        *args: Any,
        mu: int = 7,
        threshold: float = 0.95,
        lambda_u: float = 1.0,
        dist_align: bool = False,
        dist_align_momentum: float = 0.999,
        **kwargs: Any,
    ):
        if not 0 < threshold <= 1:
            raise ConfigError(f"model.threshold={threshold} must be in (0, 1]; FixMatch uses 0.95.")
        if mu < 1:
            raise ConfigError(
                f"model.mu={mu} must be an integer >= 1 (unlabelled per labelled sample; FixMatch: 7)."
            )
        if lambda_u < 0:
            raise ConfigError(f"model.lambda_u={lambda_u} must be >= 0.")
        if not isinstance(dist_align, bool):
            raise ConfigError(f"model.dist_align={dist_align!r} must be true or false (unquoted).")
        m = dist_align_momentum
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m < 1:
            raise ConfigError(f"model.dist_align_momentum={m!r} must be a number in [0, 1) (e.g. 0.999).")
        super().__init__(*args, **kwargs)
        self.hparams.update(
            mu=int(mu),
            threshold=float(threshold),
            lambda_u=float(lambda_u),
            dist_align=dist_align,
            dist_align_momentum=float(dist_align_momentum),
        )
        # running weak-view class distribution; uniform until the first step (outside the state dict so
        # checkpoints load into a plain ClassificationModule / net)
        self.register_buffer(
            "p_model",
            torch.full((self.hparams.num_classes,), 1.0 / self.hparams.num_classes),
            persistent=False,
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            dm = self.trainer.datamodule
            if dm is None or not hasattr(dm, "enable_unlabeled"):
                raise ConfigError(
                    "model=semi_supervised needs a bigmodel classification DataModule with an unlabelled pool "
                    "(data.labels_per_class=N or data.unlabeled_root=...)."
                )
            dm.enable_unlabeled(self.hparams.mu)

    def _features(self, x: torch.Tensor, augment: bool) -> torch.Tensor:
        if self.frontend is None:
            return x
        was = self.frontend.training
        self.frontend.train(augment and self.training)
        try:
            return self.frontend(x)
        finally:
            self.frontend.train(was)

    def _logits(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if all(x.shape[1:] == xs[0].shape[1:] for x in xs):
            out = self.net(torch.cat(xs))
            return list(out.split([len(x) for x in xs]))
        return [self.net(x) for x in xs]  # e.g. token batches padded to different lengths

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        if not isinstance(batch, dict):
            raise ConfigError(
                "SemiSupervisedModule got a plain batch: its DataModule was not switched to labelled + "
                "unlabelled batches (enable_unlabeled). Train through bigmodel.train with model=semi_supervised."
            )
        x, y = batch["labeled"][0], batch["labeled"][1]
        xw, xs, y_hidden = batch["unlabeled"]
        feats = [self._features(x, True), self._features(xw, False), self._features(xs, True)]
        logits_x, logits_w, logits_s = self._logits(feats)
        out = fixmatch_loss(
            logits_x, y, logits_w, logits_s, self.hparams.threshold, self.hparams.lambda_u, self.hparams.label_smoothing,
            align=self._alignment(logits_w),
        )  # fmt: skip
        self.train_acc.update(logits_x.argmax(dim=-1), y)
        self._log_monitors(out, y_hidden)
        return {
            "loss": out["loss"],
            "preds": logits_x.argmax(dim=-1).detach(),
            "target": y,
            "logits": logits_x.detach(),
        }

    @torch.no_grad()
    def _alignment(self, logits_w: torch.Tensor) -> torch.Tensor | None:
        """``uniform / p_model`` after folding this batch's weak-view mean into ``p_model``; ``None`` when
        ``dist_align`` is off."""
        if not self.hparams.dist_align:
            return None
        m = self.hparams.dist_align_momentum
        batch_mean = torch.softmax(logits_w.float(), dim=-1).mean(dim=0)
        # float32 whatever the module's precision (bf16-true casts buffers): assigning replaces the buffer
        self.p_model = self.p_model.float().mul_(m).add_(batch_mean, alpha=1 - m)
        return (1.0 / self.hparams.num_classes) / self.p_model.clamp_min(1e-6)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["semi_supervised"] = {"p_model": self.p_model.detach().float().cpu()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("semi_supervised", {}).get("p_model")
        if saved is not None and saved.shape == self.p_model.shape:
            self.p_model = saved.to(self.p_model.device, torch.float32)

    @torch.no_grad()
    def _log_monitors(self, out: dict[str, torch.Tensor], y_hidden: torch.Tensor) -> None:
        for key in ("loss", "loss_x", "loss_u"):
            self.log(f"train/{key}", out[key].detach(), on_step=True, on_epoch=False, prog_bar=key == "loss")
        mask = out["mask"]
        self.log("train/mask_rate", mask.mean(), on_step=True, on_epoch=False, prog_bar=True)
        # monitoring only: the hidden labels are compared with the pseudo-labels after the loss is built
        known = (mask > 0) & (y_hidden >= 0)
        if known.any():
            acc = (out["pseudo"][known] == y_hidden[known]).float().mean()
            self.log("train/pseudo_label_acc", acc, on_step=True, on_epoch=False)
