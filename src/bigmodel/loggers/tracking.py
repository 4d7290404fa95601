"""Experiment-tracking glue used by ``bigmodel.train`` for every logger (CSV, TensorBoard, W&B).

- :func:`log_hyperparameters`: the full resolved config, nested, plus ``run.*`` facts (git commit and dirty
  flag, parameter counts, output directory) to every logger.
- :func:`start`: continue a W&B run when resuming from a checkpoint, start ``wandb.watch``.
- :func:`finish`: close W&B runs (so each job of a multirun gets its own run).
- :class:`WandbRunInCheckpoint`: store the W&B run id in every checkpoint.
- :class:`ParamCountsAfterBuild`: re-log ``run.params`` once a module that builds its net in
  ``configure_model`` (the language model) has it.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
from lightning import Callback
from omegaconf import DictConfig, OmegaConf

from bigmodel.loggers.wandb_logger import WandbLogger
from bigmodel.utils.resolvers import PROJECT_ROOT

log = logging.getLogger(__name__)


def git_state(repo: str | Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``repo`` (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def run_facts(cfg: DictConfig, model: L.LightningModule) -> dict[str, Any]:
    """What the config does not say about a run: git state, parameter counts, output directory."""
    return {
        "git": git_state(),
        "params": {
            "total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        },
        "output_dir": str(cfg.paths.output_dir),
    }


def log_hyperparameters(cfg: DictConfig, model: L.LightningModule, loggers: list) -> dict[str, Any]:
    """Send the full resolved config (nested: ``model.optimizer.lr`` stays a path, not a flat string) and
    ``run.{git,params,output_dir}`` to every logger; returns what was sent. TensorBoard flattens it with
    ``/``; CSV writes it to ``hparams.yaml``; W&B shows it nested in the run's Config panel."""
    hparams: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    hparams.pop("hydra", None)  # present only when composed with return_hydra_config (tests)
    hparams["run"] = run_facts(cfg, model)
    for lg in loggers:
        lg.log_hyperparams(hparams)
    if loggers:
        # The config above already holds the module's hyper-parameters under `model.*`. Without this, Lightning
        # logs `model.hparams` again at fit start, as top-level keys (`optimizer`, `net`...) beside `model`.
        # Saving the same hyper-parameters again with logger=False is Lightning's public switch for that; the
        # modules keep logging them by default (bigmodel.eval, a user's own Trainer).
        model.save_hyperparameters(model.hparams, logger=False)
    return hparams


def start(loggers: list, model: L.LightningModule, ckpt_path: str | None) -> None:
    """Before training: point W&B loggers at the checkpoint's run (resume) and start ``wandb.watch``."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.resume_from_checkpoint(ckpt_path)
            lg.watch_model(model)


def finish(loggers: list, exit_code: int = 0) -> None:
    """Close every W&B run (marks it failed when ``exit_code != 0``)."""
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.finish(exit_code)


def tracking_callbacks(loggers: list) -> list[Callback]:
    """The callbacks the given loggers need (the run id in checkpoints for W&B)."""
    return [WandbRunInCheckpoint()] if any(isinstance(lg, WandbLogger) for lg in loggers) else []


class WandbRunInCheckpoint(Callback):
    """Adds ``checkpoint["wandb"] = {"id", "project", "entity"}`` (plain strings) so that resuming from the
    checkpoint continues the same W&B run. Reads only runs that exist; never creates one."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for lg in trainer.loggers:
            info = lg.checkpoint_info() if isinstance(lg, WandbLogger) else None
            if info:
                checkpoint["wandb"] = info


class ParamCountsAfterBuild(Callback):
    """Re-sends ``hparams`` (as :func:`log_hyperparameters` returned them) with ``run.params`` counted again at
    fit start, after ``configure_model`` built the net. Under FSDP/DeepSpeed ZeRO-3 the parameters are already
    sharded then, so the counts are rank 0's shard."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        self.hparams = hparams

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = self.hparams["run"]["params"]
        params["total"] = sum(p.numel() for p in pl_module.parameters())
        params["trainable"] = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        for lg in trainer.loggers:
            lg.log_hyperparams(self.hparams)
