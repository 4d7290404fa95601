"""Causal language-model LightningModule: next-token cross-entropy on ``(x, y)`` token batches."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torchmetrics import MeanMetric, MinMetric

from bigmodel.models.build import instantiate_part
from bigmodel.models.optim import build_optimizer, build_scheduler, decay_param_groups
from bigmodel.nets.gpt import sample_tokens
from bigmodel.tokenizers import Tokenizer, tokenizer_from_dict
from bigmodel.utils.compile import compile_net
from bigmodel.utils.config import to_plain
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.strategies import clip_gradients

log = logging.getLogger(__name__)
# token ids (B, T) -> logits (B, T, V): the eager net, or an exported graph's runtime session
LogitsFn = Callable[[torch.Tensor], torch.Tensor]


class LanguageModelModule(LightningModule):
    """Trains a decoder (e.g. :class:`bigmodel.nets.gpt.GPT`) with next-token cross-entropy.

    The net is built in :meth:`configure_model` (once), so Lightning can create it under an empty-init /
    meta-device context for sharded training. ``net.vocab_size`` / ``net.block_size`` left null are read
    from the DataModule there (``trainer.datamodule.vocab_size`` / ``.block_size``) and written back into
    ``self.hparams.net``, so the checkpoint's hyper-parameters are complete and ``bigmodel.generate``
    needs no data.

    Args:
        net: Hydra config of the decoder, mapping ``(B, T)`` int64 ids to logits ``(B, T, V)``.
        optimizer: ``_partial_: true`` optimizer config (AdamW); ``weight_decay`` applies to matrices
            and embeddings only, never to biases or norm weights.
        scheduler: optional ``{scheduler: <_partial_ config>, interval: step}``; the total steps are filled in.
        sample: ``{prompt, max_new_tokens, temperature, top_k, seed}`` of the text generated at every
            validation end (``max_new_tokens: 0`` turns it off).
        compile: ``true`` (or a dict of ``torch.compile`` kwargs) compiles the inner net in place at the end
            of ``configure_model``; state-dict keys stay plain (no ``_orig_mod.``).

    Logs ``train/loss``, ``val/loss`` (nats/token), ``val/ppl``, ``val/bpc`` (char tokenizer) or
    ``val/bpt`` (bits/token, other tokenizers), ``val/loss_best``, and the same under ``test/``.

    Generated samples: the validation-end sample goes to the console log; ``self.last_sample`` is
    ``(global_step, text)`` of the newest one or None (only the newest is kept). Loggers get samples
    from the ``media_text`` callback (W&B table / TensorBoard text ``val/generated``), which calls
    :meth:`generate_sample`.

    Raises:
        ConfigError: in ``configure_model``, a data ``block_size`` larger than the net's position table,
            or a null vocab/block size with no DataModule to read it from; the net rejects its arguments
            (``model.net: ...``).
    """

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        sample: dict[str, Any] | None = None,
        compile: bool | dict[str, Any] = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "net": to_plain(net),
                "optimizer": to_plain(optimizer),
                "scheduler": to_plain(scheduler),
                "sample": to_plain(sample) or {},
                "compile": to_plain(compile),
            }
        )
        self.net: torch.nn.Module | None = None
        self.tokenizer: Tokenizer | None = None
        self.last_sample: tuple[int, str] | None = None
        for stage in ("val", "test"):
            setattr(self, f"{stage}_loss", MeanMetric())
        self.val_loss_best = MinMetric()

    # -- building -------------------------------------------------------------------------------------------
    def _datamodule(self) -> Any:
        try:
            trainer = self.trainer
        except RuntimeError:  # not attached to a Trainer (bigmodel.generate builds the net by itself)
            return None
        return getattr(trainer, "datamodule", None)

    def configure_model(self) -> None:
        if self.net is not None:
            return
        cfg, dm = self.hparams.net, self._datamodule()
        for key in ("vocab_size", "block_size"):
            if cfg.get(key) is None:
                if dm is None or getattr(dm, key, None) is None:
                    raise ConfigError(
                        f"model.net.{key} is null and there is no DataModule to read it from; set model.net.{key}."
                    )
                cfg[key] = int(getattr(dm, key))
        data_block = getattr(dm, "block_size", None)
        if data_block is not None and data_block > cfg["block_size"]:
            raise ConfigError(
                f"data.block_size={data_block} is larger than the model's position table "
                f"(model.net.block_size={cfg['block_size']}). Lower data.block_size or raise model.net.block_size."
            )
        if dm is not None and getattr(dm, "vocab_size", None) and dm.vocab_size > cfg["vocab_size"]:
            raise ConfigError(
                f"The tokenizer has {dm.vocab_size} ids but model.net.vocab_size={cfg['vocab_size']}; "
                "set model.net.vocab_size=null to take it from the data."
            )
        self.net = instantiate_part(cfg, "model.net")
        compile_net(self.net, self.hparams.get("compile"))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def setup(self, stage: str) -> None:
        dm = self._datamodule()
        if getattr(dm, "tokenizer", None) is not None:
            self.tokenizer = dm.tokenizer

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, V)`` for token ids ``idx`` ``(B, T)``."""
        return self.net(idx)

    # -- steps ------------------------------------------------------------------------------------------------
    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _eval_step(self, batch: Any, stage: str) -> torch.Tensor:
        loss = self._loss(batch)
        metric = getattr(self, f"{stage}_loss")
        metric(loss.detach(), weight=batch[1].numel())
        self.log(f"{stage}/loss", metric, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "test")

    def _log_derived(self, stage: str) -> float:
        loss = float(getattr(self, f"{stage}_loss").compute())
        bits = "bpc" if getattr(self.tokenizer, "kind", None) == "char" else "bpt"
        self.log(f"{stage}/ppl", math.exp(min(loss, 50.0)), sync_dist=True)
        self.log(f"{stage}/{bits}", loss / math.log(2), sync_dist=True)
        return loss

    def on_validation_epoch_end(self) -> None:
        loss = self._log_derived("val")
        if self.trainer.sanity_checking:
            return
        self.val_loss_best(torch.tensor(loss))
        self.log("val/loss_best", self.val_loss_best.compute(), sync_dist=True, prog_bar=True)
        self._sample_text()

    def on_test_epoch_end(self) -> None:
        self._log_derived("test")

    # -- samples ----------------------------------------------------------------------------------------------
    def _generate_ids(
        self, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None,
        generator: torch.Generator | None, logits_fn: LogitsFn | None = None,
    ) -> tuple[list[int], list[int]]:  # fmt: skip
        """(prompt ids, new ids); an empty prompt starts from token 0. ``logits_fn`` (ids ``(B, T)`` ->
        logits ``(B, T, V)`` on the CPU, e.g. an ONNX Runtime session) replaces the eager net; the loop
        (:func:`bigmodel.nets.gpt.sample_tokens`) is the same either way."""
        if self.tokenizer is None:
            raise ConfigError(
                "This model has no tokenizer (the checkpoint holds none); cannot generate text."
            )
        try:
            ids = self.tokenizer.encode(prompt) or [0]
        except ConfigError as e:
            raise ConfigError(f"prompt={prompt!r}: {e}") from None
        device = torch.device("cpu") if logits_fn is not None else next(self.net.parameters()).device
        idx = torch.tensor([ids], dtype=torch.long, device=device)
        was_training = self.net.training
        self.net.eval()
        fn = logits_fn if logits_fn is not None else self.net
        out = sample_tokens(fn, idx, max_new_tokens, self.net.block_size, temperature, top_k, generator)
        self.net.train(was_training)
        return ids, out[0, len(ids) :].tolist()

    def generate_text(
        self,
        prompt: str,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
    ) -> str:
        """Prompt plus ``max_new_tokens`` sampled tokens, decoded; the same ``seed`` gives the same text.

        Raises:
            ConfigError: no tokenizer, or prompt characters outside a char vocabulary (listed).
        """
        device = next(self.net.parameters()).device
        gen = torch.Generator(device=device).manual_seed(int(seed))
        ids, new = self._generate_ids(prompt, max_new_tokens, temperature, top_k, gen)
        return self.tokenizer.decode(ids + new)

    def generate_sample(self, prompt: str = "", max_new_tokens: int = 200) -> str:
        """Decoded continuation of ``prompt`` (``""`` = from token 0), without the prompt; the hook of the
        ``media_text`` callback. Uses ``model.sample.temperature`` / ``top_k`` and torch's global RNG (the
        callback seeds it).

        Raises:
            ConfigError: as :meth:`generate_text`.
        """
        cfg = self.hparams.sample or {}
        _, new = self._generate_ids(
            prompt, max_new_tokens, cfg.get("temperature", 1.0), cfg.get("top_k"), None
        )
        return self.tokenizer.decode(new)

    def predict_step(self, batch: Any, batch_idx: int = 0) -> list[str] | None:
        """:meth:`continuations` of a batch ``prompts`` or ``(prompts, ...)`` with ``self.predict_settings``."""
        prompts = batch[0] if isinstance(batch, tuple) else batch
        if prompts is None:
            return None
        return self.continuations(prompts, batch_idx, getattr(self, "predict_settings", None))

    def continuations(
        self, prompts: list[str], batch_idx: int = 0, settings: dict[str, Any] | None = None,
        logits_fn: LogitsFn | None = None,
    ) -> list[str]:  # fmt: skip
        """The decoded continuation of each prompt, with ``settings`` (``max_new_tokens``, ``temperature``,
        ``top_k``, ``seed``; default: the ``model.sample`` settings). Prompt ``i`` is sampled with a generator
        seeded ``seed + batch_idx*1000 + i`` (on the CPU with ``logits_fn``, see :meth:`_generate_ids`), so
        the torch backend on the CPU and ONNX Runtime draw the same tokens from the same logits.

        Raises:
            ConfigError: as :meth:`generate_text`.
        """
        cfg = {**(self.hparams.sample or {}), **(settings or {})}
        device = self.device if logits_fn is None else torch.device("cpu")
        out = []
        for i, prompt in enumerate(prompts):
            gen = torch.Generator(device=device).manual_seed(int(cfg.get("seed", 0)) + batch_idx * 1000 + i)
            _, new = self._generate_ids(
                prompt,
                int(cfg.get("max_new_tokens", 100)),
                float(cfg.get("temperature", 1.0)),
                cfg.get("top_k"),
                gen,
                logits_fn,
            )
            out.append(self.tokenizer.decode(new))
        return out

    def _sample_text(self) -> None:
        # Console feedback (also under logger=csv); loggers get samples from the media_text callback.
        cfg = self.hparams.sample
        if not cfg or not cfg.get("max_new_tokens") or self.tokenizer is None or self.global_rank != 0:
            return
        text = self.generate_text(
            cfg.get("prompt", "\n"), cfg["max_new_tokens"], cfg.get("temperature", 1.0), cfg.get("top_k"),
            cfg.get("seed", 0),
        )  # fmt: skip
        self.last_sample = (int(self.global_step), text)
        log.info("Sample at step %d:\n%s", self.global_step, text)

    # -- optimisation / checkpoint --------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = dict(self.hparams.optimizer)
        groups = decay_param_groups(self.net, cfg.pop("weight_decay", 0.0))
        optimizer = build_optimizer(cfg, groups)
        steps = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(self.hparams.scheduler, optimizer, steps, self.trainer.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler} if scheduler else {"optimizer": optimizer}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Inference needs the tokenizer; kept as plain data (a JSON string for BPE).
        checkpoint["tokenizer"] = self.tokenizer.to_dict() if self.tokenizer is not None else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("tokenizer"):
            self.tokenizer = tokenizer_from_dict(checkpoint["tokenizer"])
