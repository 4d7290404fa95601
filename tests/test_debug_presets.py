"""Debug presets: runs under logs/debug/, no slow anomaly detection, limited test figures labelled partial."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bigmodel.train import train


def test_debug_limit_is_fast_and_labels_partial_test_figures(make_cfg, caplog):
    cfg = make_cfg(["debug=limit", "extras.print_config=false", "trainer.max_epochs=1"])
    assert cfg.task_name == "debug" and not cfg.trainer.detect_anomaly
    assert cfg.hydra.run.dir.startswith(f"{cfg.paths.log_dir}/debug/runs/")
    with caplog.at_level(logging.WARNING, logger="bigmodel.train"):
        train(cfg)
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["test_partial"] is True and "test/acc" in saved
    assert any(
        "partial" in r.getMessage() and "limit_test_batches=2" in r.getMessage() for r in caplog.records
    )


def test_full_test_set_is_not_partial(digits_run):
    assert "test_partial" not in digits_run["metrics"] and digits_run["metrics"]["epoch"] == 1
