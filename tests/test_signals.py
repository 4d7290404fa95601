"""Issue #13, signals: SIGTERM / SIGINT to a running `make train` finish the optimizer step, write last.ckpt,
write metrics.json with status interrupted and the step, exit 143 / 130; ckpt_path=last continues from
that step. A second Ctrl-C exits at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from bigmodel.callbacks.graceful_stop import GracefulStop
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.conftest import QUIET, run_cli

RUN = [
    *QUIET,
    "trainer.max_epochs=40",
    "+trainer.limit_train_batches=10",
    "+trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "callbacks=[default,model_checkpoint_steps]",
    "callbacks.model_checkpoint_steps.every_n_train_steps=5",
    "callbacks.early_stopping=null",
    "test=false",
]


def _make(*args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "train", *args],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
    )  # fmt: skip


def _descendant_python(pid: int) -> int:
    """The training process under make (make -> python -c execv -> python -m bigmodel.train)."""
    for _ in range(3):
        kids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == pid]
        if not kids:
            break
        pid = kids[0]
    return pid


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _wait_for(path_glob: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if list(path_glob.parent.glob(path_glob.name)):
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended before the signal: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("no step checkpoint appeared")


@pytest.mark.parametrize(
    ("sig", "code", "resume"),
    [
        (signal.SIGTERM, 143, True),
        # Ctrl-C takes GracefulStop's SIGTERM path (save, exit 130): make test-full; test_second_ctrl_c stays fast
        pytest.param(signal.SIGINT, 130, False, marks=pytest.mark.slow),
        # the same GracefulStop save as SIGTERM's, resumed the same way: one more `make train` (make test-full)
        pytest.param(signal.SIGINT, 130, True, marks=pytest.mark.slow),
    ],
)
def test_signal_saves_last_and_ckpt_last_continues(tmp_path, sig, code, resume):
    logs, run = tmp_path / "logs", tmp_path / "logs" / "digits_cnn" / "runs" / "first"
    proc = _make(f"paths.log_dir={logs}", f"hydra.run.dir={run}", *RUN)
    _wait_for(run / "checkpoints" / "steps" / "*.ckpt", proc)
    os.kill(_descendant_python(proc.pid), sig)
    _, err = proc.communicate(timeout=120)
    assert f"Error {code}" in err, err[-3000:]  # make: *** [...] Error 143: the program's exit code
    assert "Traceback" not in err, err[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["signal"] == signal.Signals(sig).name
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == metrics["step"] > 0
    assert metrics["step"] < 400  # stopped early, not at the end of training

    if not resume:
        return
    # ckpt_path=last picks the interrupted run up at its saved step, and trains to the end
    epochs = last["epoch"] + 2
    # (bigmodel.train itself, not make again: the make exit code was checked above)
    res = run_cli(
        "bigmodel.train", f"paths.log_dir={logs}", "ckpt_path=last", *RUN, f"trainer.max_epochs={epochs}"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = [d for d in (logs / "digits_cnn" / "runs").iterdir() if d.name != "first"]
    assert len(resumed) == 1
    m2 = json.loads((resumed[0] / "metrics.json").read_text())
    assert m2["status"] == "completed" and m2["global_step"] == epochs * 10
    first_logged = (resumed[0] / "csv" / "metrics.csv").read_text().splitlines()
    steps = sorted({int(r.split(",")[first_logged[0].split(",").index("step")]) for r in first_logged[1:]})
    assert steps[0] == metrics["step"]  # continues from the saved step, nothing replayed


def test_second_ctrl_c_exits_at_once(monkeypatch):
    exits = []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    stop = GracefulStop()
    stop._handler(signal.SIGINT, None)
    assert exits == [] and stop._signum == signal.SIGINT  # first: save after this step
    stop._handler(signal.SIGINT, None)
    assert exits == [130]
