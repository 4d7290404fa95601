"""Restore a DataModule's saved state (e.g. its tokenizer) from a checkpoint, for a test run without ``ckpt_path``."""

from __future__ import annotations

import lightning as L


class DataModuleState(L.Callback):
    """Loads the datamodule's saved state (its tokenizer) after ``datamodule.setup``, before testing: what
    ``trainer.test(ckpt_path=...)`` does itself, for a checkpoint Lightning cannot re-read (torchao tensor
    subclasses, see ``bigmodel.eval``). ``checkpoint``: the loaded checkpoint dict."""

    def __init__(self, checkpoint: dict) -> None:
        self.checkpoint = checkpoint

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        state = self.checkpoint.get(type(dm).__qualname__) if dm is not None else None
        if state is not None:
            dm.load_state_dict(state)
