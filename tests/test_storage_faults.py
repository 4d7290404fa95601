"""Issue #13, storage faults: a full disk fails at start-up naming the path; a damaged last.ckpt is named and
ckpt_path=last falls back to the newest readable checkpoint; another experiment's checkpoint is refused.
(A parent that is a regular file: tests/test_cli_errors.py; a save failing mid-way keeps the previous
checkpoint: tests/utils/test_checkpoint_io.py.)"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import PROJECT_ROOT
from bigmodel.utils.run import check_resume_compatible, resolve_ckpt_path


def test_full_disk_fails_at_start_up_naming_the_path(tmp_path):
    """``ulimit -f 256`` (256 KiB per file) stands in for a full disk: the 1 MiB start-up probe fails."""
    logs = tmp_path / "logs"
    cmd = f"ulimit -f 256; exec make --no-print-directory -o .venv/.installed train paths.log_dir={logs}"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    p = subprocess.run(
        ["bash", "-c", cmd], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert "Error 2" in p.stderr, p.stderr[-2000:]
    assert "File too large" in p.stderr and str(logs) in p.stderr and "ulimit -f" in p.stderr
    assert "Traceback" not in p.stderr
    assert not list(logs.glob("**/*.ckpt"))


def _ckpt(path: Path, step: int, task: str = "digits_cnn") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {}, "bigmodel": {"config": {"task_name": task}}}, path)
    return path


def _corrupt_zip(path: Path) -> Path:
    """A zip (so it passes the cheap format check) whose pickle is garbage: a damaged copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02garbage")
    return path


def _age(*paths: Path) -> None:
    """Give the paths increasing mtimes (oldest first), one second apart."""
    now = time.time()
    for i, p in enumerate(paths):
        os.utime(p, (now - 100 + i, now - 100 + i))


@pytest.mark.parametrize("damage", ["corrupt", "zero-byte", "truncated"])
def test_ckpt_last_falls_back_to_the_newest_readable_checkpoint(tmp_path, caplog, damage):
    runs = tmp_path / "logs" / "digits_cnn" / "runs"
    old_last = _ckpt(runs / "old" / "checkpoints" / "last.ckpt", 10)
    step = _ckpt(runs / "new" / "checkpoints" / "steps" / "step_00000030.ckpt", 30)
    last = runs / "new" / "checkpoints" / "last.ckpt"
    if damage == "corrupt":
        _corrupt_zip(last)
    elif damage == "zero-byte":
        last.write_bytes(b"")
    else:
        _ckpt(last, 40)
        last.write_bytes(last.read_bytes()[:100])
    _age(old_last, step, last)
    with caplog.at_level(logging.WARNING):
        picked = resolve_ckpt_path("last", tmp_path / "logs", "digits_cnn")
    assert picked == str(step)  # the newest readable one, not the older run's last.ckpt
    assert str(last) in caplog.text and str(step) in caplog.text  # says which file and what instead


def test_ckpt_last_fallback_never_picks_a_compressed_model(tmp_path):
    """``bigmodel.compress`` writes ``last.int8_dynamic.ckpt`` beside last.ckpt; a damaged last.ckpt must
    fall back to a training checkpoint, not to that newer inference model."""
    ckpts = tmp_path / "logs" / "digits_cnn" / "runs" / "r" / "checkpoints"
    step = _ckpt(ckpts / "steps" / "step_00000030.ckpt", 30)
    compressed = ckpts / "last.int8_dynamic.ckpt"
    torch.save({"global_step": 40, "state_dict": {}, "compression": {"method": "int8_dynamic"}}, compressed)
    last = _corrupt_zip(ckpts / "last.ckpt")
    _age(step, compressed, last)
    assert resolve_ckpt_path("last", tmp_path / "logs", "digits_cnn") == str(step)


def test_ckpt_last_when_nothing_is_readable_names_the_runs(tmp_path):
    runs = tmp_path / "logs" / "digits_cnn" / "runs"
    _corrupt_zip(runs / "a" / "checkpoints" / "last.ckpt")
    (runs / "b" / "checkpoints").mkdir(parents=True)
    (runs / "b" / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match="no earlier run") as e:
        resolve_ckpt_path("last", tmp_path / "logs", "digits_cnn")
    assert "a" in str(e.value) and "b" in str(e.value)


def test_explicit_corrupt_checkpoint_is_named(tmp_path):
    bad = _corrupt_zip(tmp_path / "bad.ckpt")
    cfg = OmegaConf.create({"task_name": "digits_cnn", "model": {"net": {"_target_": "x.Net"}}})
    with pytest.raises(ConfigError, match="Cannot read checkpoint") as e:
        check_resume_compatible(resolve_ckpt_path(str(bad), tmp_path, "digits_cnn"), cfg)
    assert str(bad) in str(e.value)


def test_checkpoint_of_another_experiment_with_the_same_net_is_refused(tmp_path):
    ckpt = tmp_path / "other.ckpt"
    torch.save(
        {
            "hyper_parameters": {"net": {"_target_": "bigmodel.nets.small_cnn.SmallCNN"}},
            "bigmodel": {"config": {"task_name": "mnist_cnn"}},
        },
        ckpt,
    )
    cfg = OmegaConf.create(
        {"task_name": "digits_cnn", "model": {"net": {"_target_": "bigmodel.nets.small_cnn.SmallCNN"}}}
    )
    with pytest.raises(ConfigError, match="experiment=mnist_cnn") as e:
        check_resume_compatible(ckpt, cfg)
    assert "'digits_cnn'" in str(e.value) and str(ckpt) in str(e.value)
