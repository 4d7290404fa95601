"""Store the run's config in every checkpoint, so that eval needs nothing but the checkpoint."""

from __future__ import annotations

from typing import Any

from lightning import Callback, LightningModule, Trainer


class RunConfigInCheckpoint(Callback):
    """Adds ``checkpoint["bigmodel"] = {"config": <data/model/seed/experiment as plain dicts>}``.

    The data and model sections are stored unresolved (``${paths.data_dir}`` stays an interpolation),
    so ``bigmodel.eval`` re-resolves them against the evaluating machine's paths.

    Args:
        config: plain-dict config (``OmegaConf.to_container(cfg, resolve=False)`` of the parts above).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["bigmodel"] = {"config": self.config}
