"""Run lifecycle (issue #11): last.ckpt is the newest state, resume keeps the best, ckpt_path=last/best,
unreadable checkpoints, train=false, callbacks=none, NaN loss, monitor and step-unit checks, precision."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra.core.global_hydra import GlobalHydra

from bigmodel.callbacks.nonfinite import NonFiniteLoss, NonFiniteLossError
from bigmodel.data.folders import BadFileError
from bigmodel.eval import evaluate
from bigmodel.train import train
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import check_resume_compatible, load_checkpoint, resolve_ckpt_path
from tests.conftest import QUIET, compose_cfg, run_cli
from tests.helpers.audio_files import fsdd_folder

SHORT = [*QUIET, "+trainer.limit_train_batches=2"]
# best = lowest step, Lightning's own counter: epoch 0 is the best and every later epoch is worse, whatever
# the 2-batch epochs learn (val/loss stays at chance level ~2.30 there, so "highest val/loss" was a coin flip)
EARLY_BEST = ["callbacks.model_checkpoint.monitor=step", "callbacks.model_checkpoint.mode=min"]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _ckpt(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`bigmodel.train` for 3 epochs whose best epoch is the first, two newer broken runs (a zero-byte
    last.ckpt; a kill -9 before any checkpoint), then `ckpt_path=last` to 4 epochs in a new process. (`make
    train` itself, with its exit codes, is run by tests/test_console.py, test_signals.py and test_cli_errors.py.)"""
    tmp = tmp_path_factory.mktemp("lifecycle")
    logs = tmp / "logs"
    res = run_cli("bigmodel.train", f"paths.log_dir={logs}", "trainer.max_epochs=3", *SHORT, *EARLY_BEST)
    assert res.returncode == 0, res.stderr[-3000:]
    (first,) = list((logs / "digits_cnn" / "runs").iterdir())
    newer = time.time() + 60
    for name, size in (("zz_zero_byte", 0), ("zz_killed", None)):
        run = logs / "digits_cnn" / "runs" / name
        (run / "checkpoints").mkdir(parents=True)
        if size is not None:
            (run / "checkpoints" / "last.ckpt").write_bytes(b"")
            os.utime(run / "checkpoints" / "last.ckpt", (newer, newer))
        os.utime(run, (newer, newer))
    res2 = run_cli("bigmodel.train", f"paths.log_dir={logs}", "trainer.max_epochs=4", "ckpt_path=last",
                   *SHORT, *EARLY_BEST)  # fmt: skip
    assert res2.returncode == 0, res2.stderr[-3000:]
    second = next(d for d in (logs / "digits_cnn" / "runs").iterdir() if d not in (first,) and
                  (d / "metrics.json").is_file())  # fmt: skip
    return {"logs": logs, "first": first, "second": second, "resume_log": res2.stdout + res2.stderr}


def test_last_ckpt_is_the_newest_state_when_best_came_early(runs):
    m = _metrics(runs["first"])
    assert m["global_step"] == 3 * 2
    assert Path(m["best_ckpt_path"]).name == "epoch_000.ckpt"
    last = _ckpt(m["last_ckpt_path"])
    # Lightning alone leaves last.ckpt at the best epoch (epoch 0, step 2)
    assert (last["epoch"], last["global_step"]) == (2, 6)


def test_ckpt_last_resumes_from_true_last_step_and_skips_unreadable_runs(runs):
    m = _metrics(runs["second"])
    assert m["global_step"] == 4 * 2  # continued from step 6, not from the best epoch's step 2
    rows = list(csv.DictReader(open(runs["second"] / "csv" / "metrics.csv")))
    assert min(int(r["epoch"]) for r in rows if r.get("train/acc")) == 3  # epochs 0-2 were the first run's
    # the one line naming the pick (damaged files each get their own warning, see utils/resume.py)
    lines = [ln for ln in runs["resume_log"].splitlines() if "ckpt_path=last: run " in ln]
    assert len(lines) == 1, lines
    assert runs["first"].name in lines[0] and "last.ckpt" in lines[0]
    assert "zz_zero_byte" in lines[0] and "zz_killed" in lines[0]  # named as skipped


def test_resume_into_new_dir_keeps_the_earlier_best(runs):
    # the resumed epoch 3 is worse (a higher step under mode=min): the old best stays best
    m = _metrics(runs["second"])
    assert m["best_ckpt_path"] == str(runs["first"] / "checkpoints" / "epoch_000.ckpt")
    assert (runs["first"] / "checkpoints" / "epoch_000.ckpt").is_file()  # never deleted
    assert not list((runs["second"] / "checkpoints").glob("epoch_*.ckpt"))


def test_ckpt_best_resolves_to_the_experiments_best(runs):
    best = str(runs["first"] / "checkpoints" / "epoch_000.ckpt")
    assert resolve_ckpt_path("best", runs["logs"], "digits_cnn") == best
    cfg = compose_cfg(runs["logs"].parent / "eval", ["ckpt_path=best", "experiment_name=digits_cnn"], "eval")
    cfg.paths.log_dir = str(runs["logs"])
    try:
        assert evaluate(cfg)["ckpt_path"] == best
    finally:
        GlobalHydra.instance().clear()


def test_train_false_tests_the_given_checkpoint(runs):
    first = _metrics(runs["first"])
    cfg = compose_cfg(
        runs["logs"].parent / "notrain", [*QUIET, "train=false", f"ckpt_path={first['best_ckpt_path']}"]
    )
    try:
        metrics = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    # the loss, not only the accuracy: an untrained net may score the same chance-level accuracy
    assert float(metrics["test/loss"]) == pytest.approx(first["test/loss"], abs=1e-6)
    assert float(metrics["test/acc"]) == pytest.approx(first["test/acc"], abs=1e-6)


def test_truncated_checkpoint_error_names_the_file(runs, tmp_path):
    good = Path(_metrics(runs["first"])["last_ckpt_path"])
    bad = tmp_path / "cut.ckpt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ConfigError, match=rf"Cannot read checkpoint {bad}.*truncated"):
        resolve_ckpt_path(str(bad), tmp_path, "digits_cnn")
    with pytest.raises(ConfigError, match=rf"Cannot read checkpoint {bad}"):
        load_checkpoint(bad)
    res = run_cli("bigmodel.eval", f"ckpt_path={bad}", f"paths.log_dir={tmp_path}")
    assert (
        res.returncode != 0
        and str(bad) in res.stderr
        and "failed finding central directory" not in res.stderr
    )


def test_resolve_last_and_best_without_runs(tmp_path):
    for kind in ("last", "best"):
        with pytest.raises(ConfigError, match=rf"ckpt_path={kind}: no earlier run of experiment 'exp'"):
            resolve_ckpt_path(kind, tmp_path, "exp")
        with pytest.raises(ConfigError, match="experiment_name=NAME"):
            resolve_ckpt_path(kind, tmp_path, "")


def test_callbacks_none_writes_no_checkpoint(make_cfg):
    cfg = make_cfg([*QUIET[:1], "callbacks=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=2"])
    m = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert not list(out.rglob("*.ckpt")), list(out.rglob("*.ckpt"))
    assert m["best_ckpt_path"] is None and m["last_ckpt_path"] is None


# SGD at lr=1e30 overflows the weights in the first step: the loss is NaN from step 1 on
DIVERGE = [
    "model.optimizer._target_=torch.optim.SGD",
    "~model.optimizer.weight_decay",
    "model.optimizer.lr=1e30",
]


def test_diverging_run_stops_at_once_and_keeps_no_checkpoint(make_cfg):
    cfg = make_cfg([*SHORT, *DIVERGE, "trainer.max_epochs=5"])
    with pytest.raises(NonFiniteLossError, match=r"loss=nan, global step 1, epoch 0, batch 1"):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))  # no chance-level "best"


def test_nonfinite_skip_policy_stops_a_diverging_run(make_cfg):
    cfg = make_cfg([*SHORT, *DIVERGE, "trainer.max_epochs=10", "nonfinite_loss=skip"])
    with pytest.raises(NonFiniteLossError, match=r"10 optimizer steps in a row .*diverging"):
        train(cfg)


def _clips_with_a_nan_wav(shared_data, tmp_path) -> Path:
    root = tmp_path / "clips"
    for split, idx in (("train", range(4)), ("val", [4]), ("test", [5])):
        names = {c: [f"{d}_jackson_{i}.wav" for i in idx] for c, d in (("zero", 0), ("one", 1))}
        fsdd_folder(shared_data, root / split, names)
    bad = np.full(8000, np.nan, np.float32)
    sf.write(root / "train" / "zero" / "bad.wav", bad, 8000, subtype="FLOAT")
    return root


def test_nan_wav_is_named_and_skipped_or_refused(make_cfg, tmp_path, shared_data, caplog):
    """One float WAV of NaN samples once made every loss and metric NaN without naming it: the audio
    reader now names the file, skips it under data.on_bad_file=warn (the default) or stops under error."""
    root = _clips_with_a_nan_wav(shared_data, tmp_path)
    base = ["experiment=audio_folder_cnn", f"data.root={root}", "data.num_classes=2", "data.sample_rate_hz=8000",
            "data.batch_size=9", *QUIET, "trainer.max_epochs=1"]  # fmt: skip
    with pytest.raises(BadFileError, match=r"bad\.wav: 8000 of 8000 samples are NaN or inf"):
        train(make_cfg([*base, "data.on_bad_file=error"]))
    with caplog.at_level("WARNING"):
        metrics = train(make_cfg(base))
    assert any("bad.wav" in r.getMessage() and "NaN" in r.getMessage() for r in caplog.records)
    assert np.isfinite(float(metrics["train/loss"]))


def test_nonfinite_loss_names_step_batch_and_bad_positions():
    """The NaN-loss stop names the step, epoch, batch and the positions of non-finite inputs."""
    cb = NonFiniteLoss()
    trainer = SimpleNamespace(
        global_step=7, current_epoch=2, strategy=SimpleNamespace(reduce_boolean_decision=lambda b, all: b)
    )
    x = torch.zeros(4, 3)
    x[2, 1] = float("nan")
    cb.on_train_batch_start(trainer, None, (x, torch.zeros(4)), 5)
    with pytest.raises(NonFiniteLossError, match=r"global step 7, epoch 2, batch 5, non-finite inputs at batch "
                       r"positions \[2\]"):  # fmt: skip
        cb.on_before_backward(trainer, None, torch.tensor(float("nan")))


PLATEAU = ["model.scheduler.scheduler._target_=torch.optim.lr_scheduler.ReduceLROnPlateau",
           "model.scheduler.interval=epoch"]  # fmt: skip


@pytest.mark.parametrize(
    "overrides, match",
    [
        # a monitor name outside val/ was never checked before
        (["callbacks.early_stopping.monitor=valid_acc"], r"EarlyStopping monitors 'valid_acc'"),
        (["callbacks.model_checkpoint.monitor=train/los"], r"ModelCheckpoint monitors 'train/los'"),
        ([*PLATEAU, "+model.scheduler.monitor=val/los"],
         r"ReduceLROnPlateau monitors 'val/los'.*model.scheduler.monitor"),
        # validation every 2 epochs: the scheduler would die at the end of epoch 0
        ([*PLATEAU, "+model.scheduler.monitor=val/loss",
          "trainer.check_val_every_n_epoch=2"], r"model.scheduler.frequency=2"),
    ],
)  # fmt: skip
def test_monitor_check_covers_every_monitor_before_training(make_cfg, overrides, match):
    cfg = make_cfg([*QUIET, "trainer.max_epochs=2", "+trainer.limit_train_batches=2", *overrides])
    with pytest.raises(ConfigError, match=match):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))  # no epoch was trained


def test_accumulation_larger_than_epoch_fails(make_cfg):
    cfg = make_cfg([*SHORT, "trainer.max_epochs=1", "trainer.accumulate_grad_batches=4"])
    with pytest.raises(
        ConfigError, match=r"accumulate_grad_batches=4, but an epoch has only 2 training batches"
    ):
        train(cfg)


def test_16_mixed_on_cpu_records_effective_precision(tmp_path):
    res = run_cli("bigmodel.train", f"paths.log_dir={tmp_path}", "trainer.max_epochs=1", "trainer=cpu",
                  "precision=16-mixed", "train=false", "test=false", *QUIET)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    (out,) = list((tmp_path / "digits_cnn" / "runs").iterdir())
    assert _metrics(out)["precision"] == "bf16-mixed"
    saved = (out / ".hydra" / "config.yaml").read_text()
    assert "precision: bf16-mixed" in saved and "16-mixed\n" not in saved.replace("bf16-mixed", "")


def test_resume_past_max_epochs_is_a_user_error(runs):
    """Lightning refuses it deep inside fit with a traceback; the check names both epochs and the key first."""
    last = _metrics(runs["first"])["last_ckpt_path"]  # epoch 2 of a 3-epoch run
    cfg = compose_cfg(runs["logs"].parent / "past", ["trainer.max_epochs=1"])
    with pytest.raises(ConfigError, match=r"it is at epoch 2, past trainer.max_epochs=1"):
        check_resume_compatible(last, cfg)
    check_resume_compatible(last, compose_cfg(runs["logs"].parent / "ok", ["trainer.max_epochs=4"]))
