"""Fixtures of the inference tests: one tiny real checkpoint (sklearn digits, SmallCNN, ~10 s of CPU) per
session, and real digit images written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from bigmodel.train import train
from tests.conftest import QUIET, compose_cfg


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 3-epoch digits_cnn run (test/acc about 0.95-0.99)."""
    tmp = tmp_path_factory.mktemp("digits_run")
    cfg = compose_cfg(tmp, [*QUIET, "experiment=digits_cnn", "trainer.max_epochs=3", "logger=csv"])
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return Path(metrics["last_ckpt_path"])


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory) -> tuple[Path, list[int]]:
    """40 real sklearn digits as 8x8 grayscale PNGs ``<i>.png`` (uint8 = round(x / 16 * 255)) and labels."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digit_pngs")
    d = load_digits()
    for i in range(40):
        Image.fromarray(np.round(d.images[i] / 16 * 255).astype(np.uint8), "L").save(folder / f"{i:03d}.png")
    return folder, [int(t) for t in d.target[:40]]
