"""The README's torchrun recipe, on CPU: 2 processes launched by torchrun share one run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.conftest import QUIET


@pytest.mark.slow  # ~30 s: two processes with gloo
def test_torchrun_two_processes(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "-m",
        "bigmodel.train",
        *QUIET,
        "experiment=digits_mlp",
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run_dir / "metrics.json").read_text())
    # 1,257 training samples, micro batch 64 on each of 2 ranks: 10 steps (1 process would take 20)
    assert m["global_step"] == 10
