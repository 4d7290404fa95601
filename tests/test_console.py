"""What a user reads from `make train 2>&1 | cat`: no escape codes, no noise, one epoch numbering."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.conftest import run_cli

NOISE = [
    "💡 Tip",
    "litlogger",
    "litmodels",
    "LeafSpec",
    "Trainer already configured with model summary callbacks",
    "setup plugin alembic",
]


def _plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PYTHONWARNINGS")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def test_train_through_a_pipe_is_quiet_epochs_agree_and_eval_reproduces(tmp_path):
    """The entry point behind `make train` (default experiment), stdout+stderr piped through `cat`."""
    logs = tmp_path / "logs"
    args = [
        sys.executable, "-m", "bigmodel.train", f"paths.log_dir={logs}", "trainer.max_epochs=2",
        "callbacks.model_checkpoint.save_top_k=-1",  # a file per epoch, to compare names
    ]  # fmt: skip
    cmd = " ".join(shlex.quote(a) for a in args) + " 2>&1 | cat"
    res = subprocess.run(
        cmd, shell=True, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=_plain_env()
    )
    out = res.stdout
    assert res.returncode == 0, out[-3000:]
    assert "\x1b" not in out, [line for line in out.splitlines() if "\x1b" in line][:3]
    for noise in NOISE:
        assert noise not in out, noise
    # Python warnings print as `file.py:LINE: message`; none is left that the user could act on
    assert not re.search(r"\.py:\d+: ", out), re.findall(r".*\.py:\d+: .*", out)[:3]
    assert "CONFIG" in out and "Metrics:" in out  # the config tree and the results
    assert "Total params" in out and "FLOPs" not in out  # the model summary, without the all-zero FLOPs

    (run_dir,) = list((logs / "digits_cnn" / "runs").iterdir())
    m = json.loads((run_dir / "metrics.json").read_text())
    console = [int(e) for e in re.findall(r"Epoch (\d+)/\d+", out)]
    names = sorted(int(p.stem.split("_")[1]) for p in (run_dir / "checkpoints").glob("epoch_*.ckpt"))
    rows = list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert m["epoch"] == 1  # two epochs, counted from 0
    assert (
        console[-1]
        == names[-1]
        == max(int(r["epoch"]) for r in rows if r.get("val/acc"))
        == last["epoch"]
        == m["epoch"]
    )
    assert re.search(r"Epoch 1/1\b", out)  # the last of max_epochs=2

    # eval in a fresh process rebuilds the model from the checkpoint alone and reproduces test/acc
    # (the fork server's process: the cold start's import-time output was checked on the train run above)
    res = run_cli("bigmodel.eval", f"ckpt_path={m['best_ckpt_path']}", f"paths.log_dir={logs}",
                  unset=("NO_COLOR", "FORCE_COLOR", "PYTHONWARNINGS"))  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    (eval_dir,) = list((logs / "eval" / "runs").iterdir())
    assert json.loads((eval_dir / "metrics.json").read_text())["test/acc"] == pytest.approx(
        m["test/acc"], abs=1e-6
    )
    assert "\x1b" not in res.stdout + res.stderr and "test/acc" in res.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_has_no_colour_in_a_pipe():
    res = subprocess.run(
        ["make", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, env=_plain_env()
    )
    assert res.returncode == 0 and "train" in res.stdout and "\x1b" not in res.stdout
    forced = subprocess.run(
        ["make", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
        env={**_plain_env(), "FORCE_COLOR": "1"},
    )  # fmt: skip
    assert "\x1b[36m" in forced.stdout
