"""callbacks=media_attributions: attribution pictures of validation samples reach TensorBoard during training."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.callbacks.media_attributions import MediaAttributions
from bigmodel.train import train
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET
from tests.helpers.tb_events import tb_tags


def test_attributions_reach_tensorboard(make_cfg):
    cfg = make_cfg(
        [
            "experiment=digits_cnn",
            *QUIET,
            "callbacks=[default,media_attributions]",
            "callbacks.media_attributions.num_samples=2",
            "callbacks.media_attributions.method=saliency",
            "logger=tensorboard",
            "trainer.max_epochs=1",
            "test=false",
        ]
    )
    train(cfg)
    tags = tb_tags(Path(cfg.paths.output_dir) / "tensorboard")
    assert {"val/attributions/0", "val/attributions/1"} <= tags["images"], tags
    assert sorted(Path(cfg.paths.output_dir).rglob("attributions/step_*/0[01].png"))


def test_bad_method():
    with pytest.raises(ConfigError, match="method='lime'"):
        MediaAttributions(method="lime")
