"""The train/eval entry points end to end on the real (sklearn-bundled) digits data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from bigmodel.train import train
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET, run_cli


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_train_writes_outputs_and_safe_checkpoints(digits_run):
    out, saved, metrics = digits_run["dir"], digits_run["metrics"], digits_run["returned"]
    for key in (
        "train/loss",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/acc",
        "test/f1",
        "best_ckpt_path",
        "last_ckpt_path",
        "experiment",
        "seed",
        "wall_s",
    ):
        assert key in saved, key
    assert saved["experiment"] == "digits_cnn" and saved["seed"] == digits_run["cfg"].seed
    assert saved["test/acc"] == pytest.approx(float(metrics["test/acc"]))
    assert (out / "csv" / "metrics.csv").is_file()
    for path in (saved["best_ckpt_path"], saved["last_ckpt_path"]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # fails on pickled classes
        assert ckpt["class_names"] == [str(i) for i in range(10)]
        assert ckpt["bigmodel"]["config"]["data"]["_target_"].endswith("DigitsDataModule")
        assert ckpt["hyper_parameters"]["net"]["_target_"].endswith("SmallCNN")
    assert not list(out.rglob("*.tmp")), "no temporary checkpoint files are left behind"


@pytest.mark.slow  # 30 epochs + eval, two processes; tests/test_console.py runs both entry points quickly
def test_default_job_cli_trains_and_eval_reproduces(tmp_path):
    """`python -m bigmodel.train` (what `make train` runs) on the real digits, then eval in a fresh process."""
    logs = tmp_path / "logs"
    res = run_cli("bigmodel.train", f"paths.log_dir={logs}", "extras.print_config=false")
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = list((logs / "digits_cnn" / "runs").iterdir())
    assert run_dir.name.count("_") == 2  # <date>_<time>_<unique id>
    m = _metrics(run_dir)
    assert m["test/acc"] >= 0.97
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "config_tree.log").is_file()

    res = run_cli("bigmodel.eval", f"ckpt_path={m['best_ckpt_path']}", f"paths.log_dir={logs}")
    assert res.returncode == 0, res.stderr[-3000:]
    (eval_dir,) = list((logs / "eval" / "runs").iterdir())
    e = _metrics(eval_dir)
    assert abs(e["test/acc"] - m["test/acc"]) <= 1e-6
    assert "test/acc" in res.stdout


def _mtimes(d: Path) -> dict:
    return {p.relative_to(d): p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}


def test_resume_from_last_continues_at_next_epoch(make_cfg, tmp_path, digits_run):
    """Resume the shared 2-epoch run (a copy under this test's logs/) to 4 epochs."""
    shared = digits_run["dir"]
    shared_before = _mtimes(shared)
    first_logs = tmp_path / "logs" / "digits_cnn" / "runs" / "first"
    shutil.copytree(shared, first_logs)
    before = _mtimes(first_logs)

    second = make_cfg(
        [*QUIET, "trainer.max_epochs=4", "+trainer.limit_train_batches=5", "trainer.log_every_n_steps=1", "ckpt_path=last",
         "callbacks.early_stopping=null"]
    )  # fmt: skip
    metrics = train(second)
    rows = list(csv.DictReader(open(Path(second.paths.output_dir) / "csv" / "metrics.csv")))
    epochs = sorted({int(r["epoch"]) for r in rows if r.get("train/loss")})
    assert epochs[0] == 2 and epochs[-1] == 3, epochs  # epochs 0-1 were done by the first run
    assert metrics["global_step"] == 4 * 5
    assert _mtimes(first_logs) == before  # the first run's outputs were not touched
    assert _mtimes(shared) == shared_before  # nor those its checkpoint points at


def test_missing_checkpoint_fails_fast(make_cfg):
    cfg = make_cfg([*QUIET, "ckpt_path=/nonexistent/model.ckpt"])
    with pytest.raises(ConfigError, match=r"Checkpoint not found: ckpt_path=/nonexistent/model.ckpt"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_ckpt_last_without_previous_run(make_cfg):
    cfg = make_cfg([*QUIET, "ckpt_path=last"])
    with pytest.raises(ConfigError, match=r"no earlier run of experiment 'digits_cnn' has a last.ckpt"):
        train(cfg)


@pytest.mark.parametrize("callback", ["model_checkpoint", "early_stopping"])
def test_monitor_never_logged_fails_before_training(make_cfg, callback):
    cfg = make_cfg([*QUIET, f"callbacks.{callback}.monitor=val/accuracy"])
    with pytest.raises(ConfigError, match=r"monitors 'val/accuracy', which is never logged.*'val/acc'"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # no epoch was trained


def test_batch_size_larger_than_train_split(make_cfg):
    cfg = make_cfg([*QUIET, "data.batch_size=5000", "data.drop_last=true"])
    with pytest.raises(
        ConfigError,
        match=r"data.batch_size=5000 is larger than the training split \((\d+) samples\).*at most \1,",
    ):
        train(cfg)


def test_two_runs_started_together_get_separate_dirs(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    args = [f"paths.log_dir={tmp_path}", "train=false", "test=false", "extras.print_config=false"]
    with ThreadPoolExecutor(2) as pool:  # two processes at once, started within milliseconds of each other
        procs = list(pool.map(lambda _: run_cli("bigmodel.train", *args, timeout=120), range(2)))
    for p in procs:
        assert p.returncode == 0, p.stderr[-2000:]
    dirs = list((tmp_path / "digits_cnn" / "runs").iterdir())
    assert len(dirs) == 2 and all((d / "metrics.json").is_file() for d in dirs)


@pytest.mark.slow  # one dir per job is also checked by tests/test_multirun.py's failed-job sweep in make test
def test_multirun_gives_one_dir_per_job(tmp_path):
    res = run_cli(
        "bigmodel.train",
        "-m",
        "model.optimizer.lr=0.01,0.001",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        f"paths.log_dir={tmp_path}",
        "extras.print_config=false",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (sweep,) = list((tmp_path / "digits_cnn" / "multiruns").iterdir())
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    lrs = {json.loads((sweep / j / "metrics.json").read_text())["experiment"] for j in ("0", "1")}
    assert lrs == {"digits_cnn"}


@pytest.mark.slow  # 2 processes + gloo; DDP argv/env handling stays fast in tests/test_multirun.py
def test_ddp_cpu_two_processes_one_run_dir(tmp_path):
    res = run_cli(
        "bigmodel.train",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path}",
        "extras.print_config=false",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = list((tmp_path / "digits_cnn" / "runs").iterdir())
    assert (run_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran, in the same run directory
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    m = _metrics(run_dir)
    assert 0.0 < m["test/acc"] <= 1.0
    # 1 epoch of 2 ranks x 629 samples/rank / 64 per batch = 10 steps on each rank
    assert m["global_step"] == 10


def test_resume_with_another_net_fails_clearly(make_cfg, tmp_path):
    first = make_cfg(
        [*QUIET, "trainer.max_epochs=1", "experiment=digits_mlp", "+trainer.limit_train_batches=2"]
    )
    train(first)
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    cfg = make_cfg([*QUIET, f"ckpt_path={ckpt}"])  # digits_cnn: SmallCNN, not BigMLP
    with pytest.raises(
        ConfigError,
        match=r"trained with net bigmodel.nets.big_mlp.BigMLP.*builds bigmodel.nets.small_cnn.SmallCNN",
    ):
        train(cfg)


def test_eval_last_needs_experiment_name(make_cfg):
    from bigmodel.eval import evaluate

    with pytest.raises(ConfigError, match="experiment_name=NAME"):
        evaluate(make_cfg(["ckpt_path=last"], config_name="eval"))


def test_no_logger_drops_the_lr_monitor_instead_of_failing(make_cfg, caplog):
    """``logger=[]`` with the default callbacks (which include lr_monitor): Lightning's LearningRateMonitor
    raises at train start without a logger; the run drops it with a warning and trains."""
    cfg = make_cfg([*QUIET, "logger=[]", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
                    "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"])  # fmt: skip
    assert "lr_monitor" in cfg.callbacks
    metrics = train(cfg)
    assert "train/loss" in metrics
    assert "lr_monitor callback is off" in caplog.text
