"""Session-wide trained runs, so tests that only read a run's outputs share one training (pytest plugin,
registered in tests/conftest.py). Tests must not modify these directories: copy them first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hydra.core.global_hydra import GlobalHydra

# digits_cnn for 2 epochs of 5 batches, no early stopping: small, but every output a run writes is there
DIGITS_RUN = [
    "extras.print_config=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.rich_model_summary=null",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=5",
    "callbacks.early_stopping=null",
]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> dict[str, Any]:
    """``{"dir": run dir, "metrics": metrics.json, "returned": train()'s dict, "cfg": the config}``
    of one in-process ``train`` of the default experiment (see :data:`DIGITS_RUN`)."""
    from bigmodel.train import train
    from tests.conftest import compose_cfg

    tmp = tmp_path_factory.mktemp("digits_run")
    cfg = compose_cfg(tmp, DIGITS_RUN)
    returned = train(cfg)
    GlobalHydra.instance().clear()
    out = Path(cfg.paths.output_dir)
    return {
        "dir": out,
        "metrics": json.loads((out / "metrics.json").read_text()),
        "returned": returned,
        "cfg": cfg,
    }
