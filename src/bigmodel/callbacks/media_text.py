"""Text LM media: a table of generated samples that grows over training."""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningModule, Trainer

from bigmodel.callbacks.media import MediaCallback
from bigmodel.utils.errors import ConfigError

HOOK = "generate_sample"


class MediaText(MediaCallback):
    """At the end of each selected validation epoch, asks the LightningModule for one sample per prompt and
    logs ``val/generated``: W&B gets a table ``step, epoch, prompt, sample`` holding every row so far (the
    newest ``max_rows``), so samples can be read side by side over training; TensorBoard gets this epoch's
    samples as Markdown text.

    **Interface the module provides** (a public method; the callback reads nothing else)::

        def generate_sample(self, prompt: str = "", max_new_tokens: int = 200) -> str:
            '''Decoded continuation of ``prompt`` ("" = the model's own start), without the prompt.'''

    It is called in eval mode, under ``torch.no_grad()``, on rank 0 only, with the random state forked and
    seeded with ``seed`` (so each epoch samples with the same randomness and training's RNG is untouched).

    Args:
        prompts: the prompts, one sample each (1..16).
        max_new_tokens: passed to ``generate_sample``.
        every_n_epochs: see :class:`MediaCallback`.
        max_rows: rows kept in the W&B table.
        max_chars: each sample is cut to this many characters.
        seed: the sampling seed.

    Raises:
        ConfigError: bounds out of range, or a module without ``generate_sample`` (at the start of fit).
    """

    def __init__(
        self,
        prompts: list[str] | tuple[str, ...] = ("",),
        max_new_tokens: int = 200,
        every_n_epochs: int = 1,
        max_rows: int = 200,
        max_chars: int = 2000,
        seed: int = 1234,
        name: str = "media_text",
    ) -> None:
        super().__init__(every_n_epochs, name)
        prompts = [str(p) for p in prompts]
        if not 1 <= len(prompts) <= 16 or max_new_tokens < 1 or max_rows < 1 or max_chars < 1:
            raise ConfigError(
                f"callbacks.{name}: use 1..16 prompts, and max_new_tokens, max_rows, max_chars >= 1."
            )
        self.prompts, self.max_new_tokens = prompts, int(max_new_tokens)
        self.max_rows, self.max_chars, self.seed = int(max_rows), int(max_chars), int(seed)
        self.rows: list[list[Any]] = []

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not callable(getattr(pl_module, HOOK, None)):
            raise ConfigError(
                f"callbacks.{self.name} needs the LightningModule to define {HOOK}(prompt: str, max_new_tokens: "
                f"int) -> str; {type(pl_module).__name__} does not. Remove callbacks.{self.name} for this model."
            )

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        new_rows = []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(self.seed)
            for prompt in self.prompts:
                sample = str(getattr(pl_module, HOOK)(prompt=prompt, max_new_tokens=self.max_new_tokens))
                new_rows.append(
                    [trainer.global_step, trainer.current_epoch, prompt, sample[: self.max_chars]]
                )
        self.rows = (self.rows + new_rows)[-self.max_rows :]
        if self.wandb_runs(trainer):
            import wandb

            self.wandb_log(
                trainer,
                {"val/generated": wandb.Table(columns=["step", "epoch", "prompt", "sample"], data=self.rows)},
            )
        for writer in self.tb_writers(trainer):
            text = "\n\n".join(f"**prompt:** `{p!r}`\n\n```\n{s}\n```" for _, _, p, s in new_rows)
            writer.add_text("val/generated", text, trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.rows = [list(r) for r in state_dict.get("rows", [])]
