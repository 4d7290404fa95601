"""Evaluate a checkpoint on its test split: ``python -m bigmodel.eval ckpt_path=FILE`` (also
``bigmodel-eval``, ``make eval``). The data and model configs come from the checkpoint itself, so no
experiment needs naming; ``+data.KEY=VALUE`` changes one data setting (e.g. ``+data.batch_size=256``).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from bigmodel.utils.cli import entry_point
from bigmodel.utils.run import entry_ckpt_path, write_metrics

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` and return (and write to ``metrics.json``) its test metrics.

    Raises:
        ConfigError: no ``ckpt_path``, a missing file, or a checkpoint not written by ``bigmodel.train``.
    """
    started = time.time()
    ckpt_path = entry_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "eval")
    # imported once the checkpoint is known to exist: a wrong ckpt_path fails without torch's import time
    import hydra
    import lightning as L

    from bigmodel.callbacks.data_state import DataModuleState
    from bigmodel.inference.loader import load_module, read_bigmodel_checkpoint
    from bigmodel.utils.config import instantiate_group, print_config_tree

    checkpoint = read_bigmodel_checkpoint(ckpt_path)
    run_cfg = checkpoint["bigmodel"]["config"]
    _use_training_data_dir(cfg, run_cfg.get("data_dir"))
    given = cfg.get("model")  # the user's `model.*` overrides, applied on the checkpoint's hyper-parameters
    model_overrides = OmegaConf.to_container(given, resolve=True) if OmegaConf.is_config(given) else {}
    with open_dict(cfg):
        cfg.data = OmegaConf.merge(run_cfg["data"], cfg.get("data") or {})
        cfg.model = OmegaConf.merge(run_cfg["model"], cfg.get("model") or {})
        cfg.seed = run_cfg.get("seed", cfg.get("seed"))
        cfg.experiment_name = run_cfg.get("task_name")
    output_dir = Path(cfg.paths.output_dir)
    print_config_tree(cfg, save_dir=output_dir, show=cfg.extras.get("print_config", True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    # the shared inference loader (a `bigmodel.compress` output included); `model.*` overrides apply on top
    model: L.LightningModule = load_module(ckpt_path, checkpoint, model_overrides)
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    # Training-only callbacks (checkpointing, early stopping) are deliberately absent here. ckpt_path
    # still goes to trainer.test: Lightning restores the DataModule's state (the tokenizer) after setup.
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
    if checkpoint.get("compression"):
        # no ckpt_path: Lightning re-reads it with a callable map_location, which torch.load refuses for
        # tensor subclasses (torchao's int8_weight_only). load_module restored the weights and the
        # checkpoint hook already; the datamodule's state follows once it is set up (Lightning's order).
        trainer.callbacks.append(DataModuleState(checkpoint))
        trainer.test(model=model, datamodule=datamodule)
    else:
        trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    metrics: dict[str, Any] = dict(trainer.callback_metrics)
    metrics.update(
        ckpt_path=ckpt_path,
        experiment=cfg.experiment_name,
        seed=cfg.seed,
        wall_s=round(time.time() - started, 3),
    )
    write_metrics(output_dir / "metrics.json", metrics)
    log.info("Run outputs: %s", output_dir)
    return metrics


def _use_training_data_dir(cfg: DictConfig, train_data_dir: str | None) -> None:
    """Evaluate on the data the run trained on: unless ``paths.data_dir`` (or ``$BIGMODEL_DATA_DIR``) is
    given now, take the training run's data directory when it exists on this machine."""
    given = any(o.startswith("paths.data_dir=") for o in HydraConfig.get().overrides.task)
    if (
        given
        or os.environ.get("BIGMODEL_DATA_DIR")
        or not train_data_dir
        or not Path(train_data_dir).is_dir()
    ):
        return
    if Path(train_data_dir).resolve() != Path(cfg.paths.data_dir).resolve():
        log.info(
            "Using the training run's data directory %s (override with paths.data_dir=...)", train_data_dir
        )
        cfg.paths.data_dir = train_data_dir


@entry_point("eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    evaluate(cfg)


if __name__ == "__main__":
    main()
