"""model.compile=true compiles the inner net in place; checkpoints keep plain keys and load without compile."""

from __future__ import annotations

import hydra
import lightning as L
import torch

from bigmodel.models.classification import ClassificationModule
from bigmodel.utils.run import load_checkpoint


def test_compiled_training_writes_plain_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg(["net=big_mlp", "model.compile=true"])
    model = hydra.utils.instantiate(cfg.model, _recursive_=False)
    dm = hydra.utils.instantiate(cfg.data)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert model.net._compiled_call_impl is not None  # the net, not the LightningModule, was compiled
    assert getattr(model, "_compiled_call_impl", None) is None
    path = tmp_path / "c.ckpt"
    trainer.save_checkpoint(path)
    state = load_checkpoint(path)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]
    plain = ClassificationModule.load_from_checkpoint(path, compile=False, weights_only=True)
    assert plain.net._compiled_call_impl is None
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    torch.testing.assert_close(plain.eval()(x), model(x))
