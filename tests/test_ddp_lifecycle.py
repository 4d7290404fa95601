"""DDP run lifecycle on CPU (gloo, 2 processes), issue #11: a stop decided on one rank stops every rank and
the run ends with its checkpoint; ``ddp_spawn`` completes its test stage and writes metrics.json."""

from __future__ import annotations

import json

import pytest

from tests.conftest import QUIET, run_cli


def only_metrics(logs):
    (path,) = logs.glob("*/runs/*/metrics.json")
    return json.loads(path.read_text()), path.parent


@pytest.mark.slow
def test_stop_on_one_rank_stops_all_ranks(tmp_path):
    logs = tmp_path / "logs"
    p = run_cli(
        "bigmodel.train",
        "trainer=ddp_cpu",
        f"paths.log_dir={logs}",
        *QUIET,
        "trainer.max_epochs=3",
        "+trainer.limit_train_batches=8",
        "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
        "+callbacks.stop_rank0._target_=tests.helpers.rank0_stop.StopOnRankZero",
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    metrics, run = only_metrics(logs)
    assert metrics["status"] == "completed"
    # trainer.min_epochs=1 lets the stop take effect at the end of epoch 0: one epoch of 8 steps, not 3
    assert metrics["global_step"] == 8
    assert (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_ddp_spawn_completes_the_test_stage(tmp_path):
    logs = tmp_path / "logs"
    p = run_cli(
        "bigmodel.train",
        "trainer=ddp_cpu",
        "trainer.strategy=ddp_spawn",
        f"paths.log_dir={logs}",
        *QUIET,
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    metrics, _ = only_metrics(logs)
    assert metrics["status"] == "completed" and "test/acc" in metrics
