"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network",
arXiv:1503.02531): a student net trained on soft targets from a frozen teacher mixed with the hard labels.

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)

``s``/``t`` are the student's / teacher's logits ``(B, K)``, ``T`` the temperature; the ``T^2`` keeps the
soft term's gradients on the scale of the hard term's as ``T`` changes (section 2 of the paper).
The teacher is any classification checkpoint of ``bigmodel.train`` (any modality), rebuilt by the shared
inference loader; its logits are computed on the fly, on the student's own batches (so train-time
augmentation is seen by both), or with ``cache_teacher`` once per training example and reused in later
epochs, which is only right where the training inputs do not change between epochs (no augmentation).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import torch
import torch.nn.functional as F

from bigmodel.models.classification import ClassificationModule
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, soft, hard)`` of Hinton et al. 2015 (module docstring) for logits ``(B, K)`` and labels ``(B,)``.

    ``soft`` is ``T^2 * KL(teacher || student)`` at temperature ``T``, averaged over the batch; ``hard`` is the
    cross-entropy with the labels at ``T = 1``.
    """
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t
    hard = F.cross_entropy(student_logits, target, label_smoothing=label_smoothing)
    return alpha * soft + (1 - alpha) * hard, soft, hard


class DistillationModule(ClassificationModule):
    """A :class:`ClassificationModule` (same net, metrics, optimizer and checkpoints) whose training loss is
    :func:`distillation_loss` against a frozen teacher. Validation and test are the student's alone, and its
    checkpoints load like any classifier's (the teacher is not stored in them).

    Args:
        teacher_ckpt: a classification checkpoint of ``bigmodel.train``; loaded in ``setup("fit")``.
        alpha: weight of the soft (teacher) term in [0, 1]; 0 trains from the labels alone.
        temperature: softmax temperature T > 0 (Hinton et al. use 1-20; 2-4 suits few classes).
        cache_teacher: keep the teacher's logits per training example (keyed by a hash of its input; token
            ids without their trailing padding) and reuse them from the second epoch on. For data without
            augmentation, where the teacher's forward pass dominates (a MiniLM teacher is ~20x its student).
            If a later epoch finds fewer than half the hits it should (the inputs change: augmentation), it
            warns and turns itself off. The cache is per process (not in the checkpoint): a resumed run refills
            it, and under DDP each rank caches what it sees.
        **kwargs: :class:`ClassificationModule`'s (``net``, ``optimizer``, ``num_classes``, ...).

    Logs ``train/loss`` (the mixed loss), ``train/kd_loss`` (soft term) and ``train/ce_loss`` (hard term),
    and with ``cache_teacher`` ``train/teacher_cache_hit_rate`` per epoch (0 in the first; after it, for data
    without augmentation, 1, or about 1/world_size per rank under DDP).

    Raises:
        ConfigError: ``alpha``/``temperature`` out of range (``model.alpha``, ``model.temperature``), no
            ``teacher_ckpt`` with ``alpha > 0``, or a teacher whose class count, input shape or tokenizer
            differs from the student's data (before training; the message names both).
    """

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        num_classes: int,
        teacher_ckpt: str | None = None,
        alpha: float = 0.9,
        temperature: float = 4.0,
        cache_teacher: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, optimizer, num_classes, **kwargs)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(
                f"model.alpha={alpha} must be in [0, 1] (the weight of the teacher's soft targets)."
            )
        if not float(temperature) > 0:
            raise ConfigError(f"model.temperature={temperature} must be > 0.")
        self.save_hyperparameters(
            {"teacher_ckpt": teacher_ckpt, "alpha": float(alpha), "temperature": float(temperature),
             "cache_teacher": bool(cache_teacher)}
        )  # fmt: skip
        # example hash -> teacher logits (K,) on the CPU; hits/misses of the current epoch
        self._cache: dict[bytes, torch.Tensor] | None = {} if cache_teacher else None
        self._hits = self._misses = 0
        self._filled = False  # an epoch of this process has put examples in the cache
        self._pad_id = 0  # the data's padding token id, for the cache keys of token-id inputs
        # kept out of the module tree: not trained, not saved in the student's checkpoint, not counted as
        # the student's parameters (object.__setattr__ bypasses nn.Module's registration)
        object.__setattr__(self, "teacher", None)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.hparams.alpha > 0 and self.teacher is None:
            object.__setattr__(self, "teacher", self._load_teacher())
        if stage == "fit":
            tokenizer = getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None)
            self._pad_id = int(getattr(tokenizer, "pad_id", 0) or 0)

    def _load_teacher(self) -> torch.nn.Module:
        from bigmodel.inference.loader import load_model  # the one checkpoint loader

        path = self.hparams.teacher_ckpt
        if not path:
            raise ConfigError(
                "model=distillation needs model.teacher_ckpt=<teacher .ckpt> (or model.alpha=0 to train "
                "the student from the labels alone)."
            )
        loaded = load_model(path)
        teacher = loaded.module
        t_classes = int(teacher.hparams.get("num_classes") or 0)
        if t_classes != int(self.hparams.num_classes):
            raise ConfigError(
                f"model.teacher_ckpt={path} predicts {t_classes} classes but the student's data has "
                f"{self.hparams.num_classes} (data.num_classes); distil a teacher trained on the same classes."
            )
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None:
            self._check_inputs(loaded, next(iter(dm.train_dataloader()))[0], path)
        teacher.eval().requires_grad_(False)
        return teacher

    @torch.no_grad()
    def _check_inputs(self, loaded: Any, x: torch.Tensor, path: str) -> None:
        """The teacher must read the student's batches: the same example shape, or for token ids the same
        tokenizer (a probe sentence must encode to the same ids)."""
        pre = loaded.pre
        if not x.is_floating_point() and hasattr(pre, "tokenizer"):
            probe = "a probe sentence, to compare the two tokenizers"
            student_tok = getattr(self.trainer.datamodule, "tokenizer", None)
            t_ids, s_ids = pre.tokenizer.encode(probe), student_tok.encode(probe) if student_tok else None
            if s_ids is not None and list(t_ids) != list(s_ids):
                raise ConfigError(
                    f"model.teacher_ckpt={path} reads token ids of another tokenizer than the student's data "
                    f"(teacher: {list(t_ids)[:8]}..., student data: {list(s_ids)[:8]}... for {probe!r}); set "
                    "data.tokenizer to the teacher's (e.g. kind: hf with its path)."
                )
            return
        want = tuple(pre.adapter(pre.example(1)).shape[1:])
        got = tuple(x.shape[1:])
        if want != got:
            raise ConfigError(
                f"model.teacher_ckpt={path} takes inputs of shape {want} per example but the student's data "
                f"gives {got} ({loaded.experiment}); distil on data shaped like the teacher's."
            )

    @torch.no_grad()
    def _teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits ``(B, K)`` for the batch ``x``, from the cache where it has them."""
        if self._cache is None:
            return self.teacher(x)
        keys = self._keys(x)
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        self._hits += len(keys) - len(missing)
        self._misses += len(missing)
        if missing:
            fresh = self.teacher(x[missing]).float().cpu()
            for i, row in zip(missing, fresh, strict=True):
                self._cache[keys[i]] = row
        return torch.stack([self._cache[k] for k in keys]).to(x.device)

    def _keys(self, x: torch.Tensor) -> list[bytes]:
        # Token ids are right-padded to the longest row of their batch, which changes from epoch to epoch
        # as batches are reshuffled; the teacher masks the padding, so the key is the ids without it.
        keys = []
        for row in x.detach().cpu():
            if not row.is_floating_point() and row.dim() == 1:
                keep = (row != self._pad_id).nonzero()
                row = row[: int(keep[-1]) + 1] if len(keep) else row[:0]
            keys.append(
                hashlib.blake2b(row.contiguous().view(torch.uint8).numpy().tobytes(), digest_size=16).digest()
            )
        return keys

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        seen = self._hits + self._misses
        if self._cache is not None and seen:
            self.log("train/teacher_cache_hit_rate", self._hits / seen)
        # Judged on epochs after the first one *this process* trained (a resumed run starts with an empty
        # cache). Each rank keeps its own cache and sees a reshuffled 1/world_size of the data, so a rank
        # expects about 1/world_size hits; far fewer means the inputs change (augmentation), and a few
        # unchanged ones (a flip or a small rotation that left an image as it was) must not keep it on.
        expected = 1.0 / self.trainer.world_size
        if self._cache is not None and self._filled and seen and self._hits / seen < 0.5 * expected:
            log.warning(
                "model.cache_teacher: only %d of %d training examples of epoch %d were in the teacher cache, "
                "so the inputs change between epochs (augmentation?); computing the teacher's logits on the "
                "fly from now on. Set model.cache_teacher=false for this data.",
                self._hits, seen, self.current_epoch,
            )  # fmt: skip
            self._cache = None
        elif self._cache is not None:
            log.info(
                "teacher cache, epoch %d: %d hits, %d computed (%d examples cached)",
                self.current_epoch, self._hits, self._misses, len(self._cache),
            )  # fmt: skip
        self._filled = self._filled or self._misses > 0
        self._hits = self._misses = 0

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        if self.teacher is None:  # alpha = 0: the plain classifier
            return super().training_step(batch, batch_idx)
        x, y = batch[0], batch[1]
        logits = self(x)
        teacher_logits = self._teacher_logits(x)
        loss, soft, hard = distillation_loss(
            logits,
            teacher_logits,
            y,
            self.hparams.alpha,
            self.hparams.temperature,
            self.hparams.label_smoothing,
        )
        self.train_acc.update(logits.argmax(dim=-1), y)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/kd_loss", soft.detach(), on_step=True, on_epoch=False)
        self.log("train/ce_loss", hard.detach(), on_step=True, on_epoch=False)
        return {"loss": loss, "preds": logits.argmax(dim=-1).detach(), "target": y, "logits": logits.detach()}
