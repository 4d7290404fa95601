"""Fixtures of the compression tests: small real checkpoints (sklearn digits, ~10 s of CPU each) shared
by the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from bigmodel.train import train
from tests.conftest import QUIET, compose_cfg


def _train(tmp: Path, *overrides: str) -> dict:
    cfg = compose_cfg(tmp, [*QUIET, "logger=csv", "callbacks.early_stopping=null", *overrides])
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return metrics


@pytest.fixture(scope="session")
def digits_mlp_ckpt(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 4-epoch digits_mlp run (BigMLP 64-256-256-10, test/acc about 0.9)."""
    return Path(
        _train(tmp_path_factory.mktemp("mlp"), "experiment=digits_mlp", "trainer.max_epochs=4")[
            "last_ckpt_path"
        ]
    )


@pytest.fixture(scope="session")
def digits_cnn_ckpt(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 3-epoch digits_cnn run (SmallCNN, test/acc about 0.95)."""
    return Path(
        _train(tmp_path_factory.mktemp("cnn"), "experiment=digits_cnn", "trainer.max_epochs=3")[
            "last_ckpt_path"
        ]
    )
