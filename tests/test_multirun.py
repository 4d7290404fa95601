"""Multiruns (issue #11): a failing job does not stop the sweep, its own log holds its traceback, its
metrics.json says failed, and the end lists every failed job; with DDP, a re-launched rank runs its one
job in that job's directory (one sweep directory, each checkpoint in its own job)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigmodel.utils.cli import JOB_DIR_ENV, JOB_OVERRIDES_ENV, _single_job_argv
from tests.conftest import QUIET, run_cli

TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
]


def sweep_dirs(logs: Path) -> list[Path]:
    return sorted(logs.glob("*/multiruns/*"))


def test_failed_jobs_are_logged_and_listed(tmp_path):
    logs = tmp_path / "logs"
    p = run_cli("bigmodel.train", "-m", "model.optimizer.lr=-1,0.01", f"paths.log_dir={logs}", *QUIET, *TINY)
    assert p.returncode == 1, p.stderr[-3000:]  # a job failed on a non-user error
    (sweep,) = sweep_dirs(logs)
    failed, ok = (
        json.loads((sweep / "0" / "metrics.json").read_text()),
        json.loads((sweep / "1" / "metrics.json").read_text()),
    )
    assert failed["status"] == "failed" and failed["error_type"] == "ValueError" and "-1" in failed["error"]
    assert ok["status"] == "completed" and "test/acc" in ok  # the sweep went on after the failure
    job_log = (sweep / "0" / "train.log").read_text()
    assert "Traceback" in job_log and "Invalid learning rate: -1" in job_log
    assert "Traceback" not in (sweep / "1" / "train.log").read_text()
    summary = p.stderr[p.stderr.index("multirun job(s) failed") :]
    assert str(sweep / "0") in summary and "Invalid learning rate: -1" in summary
    assert str(sweep / "1") not in summary


def test_relaunched_rank_runs_its_single_job():
    env = {
        JOB_DIR_ENV: "/logs/x/multiruns/s/1",
        JOB_OVERRIDES_ENV: json.dumps(["seed=2", "trainer=ddp_cpu"]),
        "LOCAL_RANK": "1",
    }
    # what Lightning's subprocess launcher runs for rank 1: the sweep command plus hydra.run.dir etc.
    argv = [
        "train.py",
        "-m",
        "seed=1,2",
        "trainer=ddp_cpu",
        "-cn",
        "train",
        'hydra.run.dir="/logs/x/runs/new"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]
    out = _single_job_argv(argv, env)
    assert "-m" not in out and "seed=1,2" not in out
    assert out[:3] == ["train.py", "-cn", "train"]
    assert "seed=2" in out and 'hydra.run.dir="/logs/x/multiruns/s/1"' in out and "hydra.mode=RUN" in out
    assert _single_job_argv(argv, {**env, "LOCAL_RANK": "0"}) == argv  # the launching rank is untouched
    assert _single_job_argv(argv, {"LOCAL_RANK": "1"}) == argv  # a plain (non-multirun) DDP run


@pytest.mark.slow
def test_multirun_with_ddp_has_one_sweep_and_per_job_checkpoints(tmp_path):
    logs = tmp_path / "logs"
    p = run_cli(
        "bigmodel.train",
        "-m",
        "seed=1,2",
        "trainer=ddp_cpu",
        f"paths.log_dir={logs}",
        *QUIET,
        *TINY,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (sweep,) = sweep_dirs(logs)  # rank 1 did not replay the sweep into a second directory
    assert not list(logs.glob("*/runs/*"))
    for job, seed in (("0", 1), ("1", 2)):
        m = json.loads((sweep / job / "metrics.json").read_text())
        assert m["status"] == "completed" and m["seed"] == seed
        assert Path(m["best_ckpt_path"]).parent == sweep / job / "checkpoints"
        assert (sweep / job / "train_ddp_process_1.log").is_file()  # rank 1 ran in the same job dir
