"""Train a model: ``python -m bigmodel.train [experiment=NAME] [key=value ...]`` (also ``bigmodel-train``,
``make train``). ``--help`` lists the config groups; ``--cfg job`` prints the composed config.

Each run writes ``logs/<experiment>/runs/<timestamp>_<id>/`` with the resolved config, checkpoints,
logger files and ``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from bigmodel.utils.cli import entry_point
from bigmodel.utils.objective import objective

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best checkpoint; returns the metrics also written to ``metrics.json``.

    Raises:
        ConfigError: a missing checkpoint, ``ckpt_path=last`` without an earlier run, a monitored
            metric that is never logged, a batch size that leaves no training batch, or a
            ``data.global_batch_size`` that does not split into micro batches x devices.
    """
    from bigmodel.utils.run import check_resume_compatible, resolve_ckpt_path

    # first: a missing, unreadable or mismatched checkpoint, or ckpt_path=last without a run, fails before
    # the imports below (the compatibility check reads the checkpoint: torch only, not Lightning)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name)
    if ckpt_path:
        check_resume_compatible(ckpt_path, cfg)

    # Imported here, not at the top: `--help`, `--cfg job`, Hydra's composition errors (an unknown key) and
    # a bad ckpt_path then cost no torch/Lightning import (about 5 s of CPU per process, 10 s under load).
    import hydra
    import lightning as L
    import torch
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from bigmodel.callbacks.graceful_stop import GracefulStop
    from bigmodel.callbacks.monitor_check import MonitorCheck
    from bigmodel.callbacks.nonfinite import NonFiniteLoss
    from bigmodel.callbacks.optuna_pruning import OptunaPruning
    from bigmodel.callbacks.rng_state import RNGState
    from bigmodel.callbacks.run_config import RunConfigInCheckpoint
    from bigmodel.callbacks.step_units_check import StepUnitsCheck
    from bigmodel.callbacks.sync_stop import SyncStop
    from bigmodel.loggers import tracking
    from bigmodel.utils.batch import apply_batch_plan
    from bigmodel.utils.config import instantiate_group, print_config_tree, subset
    from bigmodel.utils.run import checkpointing_kwargs, record_effective_precision

    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    # before anything is built: sets data.batch_size and trainer.accumulate_grad_batches
    apply_batch_plan(cfg)
    if cfg.extras.get("float32_matmul_precision") and torch.cuda.is_available():
        torch.set_float32_matmul_precision(cfg.extras.float32_matmul_precision)
    # no Trainer exists yet to ask `is_global_zero`: Lightning's decorator reads the rank from the environment
    rank_zero_only(print_config_tree)(cfg, save_dir=output_dir, show=cfg.extras.get("print_config", True))
    L.seed_everything(cfg.seed, workers=True)

    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("Instantiating model <%s>", cfg.model._target_)
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, _recursive_=False)

    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    # MonitorCheck first: its message comes before EarlyStopping's/ModelCheckpoint's own errors
    callbacks = [
        MonitorCheck(),
        StepUnitsCheck(),
        NonFiniteLoss(cfg.get("nonfinite_loss", "error")),
        SyncStop(),  # a stop decided on one rank stops all ranks (else DDP dies on a connection reset)
        RNGState(),  # python/numpy/torch RNGs per rank in every checkpoint: an exact resume
        GracefulStop(),  # SIGTERM/Ctrl-C: save last.ckpt after this optimizer step, exit 143/130
        *callbacks,
        OptunaPruning(),  # in an Optuna sweep's trial only: report val metrics, prune bad trials
    ]
    callbacks += [
        RunConfigInCheckpoint(
            {
                **subset(cfg, ["data", "model", "seed", "task_name"]),
                "data_dir": str(Path(cfg.paths.data_dir).resolve()),
            }
        ),
    ]
    loggers = instantiate_group(cfg.get("logger"), "logger")
    if not loggers:
        from lightning.pytorch.callbacks import LearningRateMonitor

        # Lightning's LearningRateMonitor raises at train start without a logger (logger=[]): it has
        # nowhere to write, so drop it and say so instead of failing the run with a traceback
        kept = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
        if len(kept) < len(callbacks):
            log.warning("logger=[]: no logger to write learning rates to; the lr_monitor callback is off.")
        callbacks = kept
    callbacks += tracking.tracking_callbacks(loggers)
    log.info("Instantiating trainer <%s>", cfg.trainer._target_)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **checkpointing_kwargs(cfg, callbacks)
    )
    record_effective_precision(cfg, trainer, output_dir)  # before hparams are logged
    exit_code = 1
    try:
        tracking.start(loggers, model, ckpt_path)
        hparams = tracking.log_hyperparameters(cfg, model, loggers)
        if loggers and not hparams["run"]["params"]["total"]:  # the net is built in configure_model (LM)
            trainer.callbacks.append(tracking.ParamCountsAfterBuild(hparams))
        metrics = _fit_and_test(cfg, trainer, model, datamodule, ckpt_path, started)
        exit_code = 0
        return metrics
    finally:
        # closes W&B runs, so the next job of a multirun (same process) starts its own run
        tracking.finish(loggers, exit_code)


def _fit_and_test(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
    started: float,
) -> dict[str, Any]:
    from bigmodel.utils.run import checkpoint_to_test, write_metrics

    output_dir = Path(cfg.paths.output_dir)

    metrics: dict[str, Any] = {}
    if cfg.get("train", True):
        log.info("Training (resume from %s)", ckpt_path) if ckpt_path else log.info("Training")
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(trainer.callback_metrics)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("test", True):
        test_ckpt = checkpoint_to_test(cfg, trainer, ckpt_path)
        trainer.test(model=model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=True)
        metrics.update(trainer.callback_metrics)
        if trainer.limit_test_batches != 1.0:  # e.g. debug=limit: 2 batches of a test set sorted by class
            metrics["test_partial"] = True
            log.warning(
                "test/ figures come from %s test batch(es) only (trainer.limit_test_batches=%s): partial, not "
                "the test score",
                sum(trainer.num_test_batches),
                trainer.limit_test_batches,
            )

    last = (
        Path(trainer.checkpoint_callback.dirpath or "", "last.ckpt") if trainer.checkpoint_callback else None
    )
    metrics.update(
        best_ckpt_path=best or None,
        last_ckpt_path=str(last) if last and last.exists() else None,  # a file, or a sharded folder
        experiment=cfg.task_name,
        seed=cfg.seed,
        # the 0-based index of the last epoch trained, as in the progress bar ("Epoch 13/29"), metrics.csv and
        # checkpoint names (epoch_013.ckpt); trainer.current_epoch is one more once an epoch has finished
        epoch=trainer.fit_loop.epoch_progress.current.started - 1 if cfg.get("train", True) else None,
        global_step=trainer.global_step,
        precision=str(trainer.precision),  # the effective one (16-mixed runs as bf16-mixed on CPU)
        output_dir=str(output_dir),
        wall_s=round(time.time() - started, 3),
    )
    write_metrics(output_dir / "metrics.json", metrics)
    if trainer.is_global_zero:
        log.info("Metrics: %s", {k: round(float(v), 5) for k, v in metrics.items() if "/" in k})
        log.info("Run outputs: %s", output_dir)
    return metrics


@entry_point("train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimized_metric`` for hyper-parameter sweeps."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    metrics = train(cfg)
    sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return objective(metrics, cfg.get("optimized_metric"), sweeping)


if __name__ == "__main__":
    main()
