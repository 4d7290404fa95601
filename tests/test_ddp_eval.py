"""A DDP CPU test run (2 processes, gloo) gives the same test metrics as 1 process on the same checkpoint:
the eval loaders use Lightning's UnrepeatedDistributedSampler, so no sample is padded in or counted twice."""

from __future__ import annotations

import json

import pytest

from tests.conftest import QUIET, run_cli


@pytest.mark.slow  # ~1.5 min on 2 shared cores: three subprocess runs, one of them 2-process DDP
def test_ddp_cpu_eval_matches_single_process(tmp_path):
    common = [*QUIET, "logger=csv", f"paths.log_dir={tmp_path / 'logs'}"]
    train_dir = tmp_path / "train"
    r = run_cli(
        "bigmodel.train",
        *common,
        "experiment=digits_mlp",
        "trainer=cpu",
        "trainer.max_epochs=2",
        "test=false",
        f"hydra.run.dir={train_dir}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = json.loads((train_dir / "metrics.json").read_text())["best_ckpt_path"]
    results = {}
    for name, trainer in (("single", "trainer=cpu"), ("ddp", "trainer=ddp_cpu")):
        out = tmp_path / name
        # batch 64 over 2 ranks: the 270-sample test split is uneven per rank, the hard case for padding
        r = run_cli(
            "bigmodel.eval",
            *QUIET[:1],
            "logger=csv",
            f"ckpt_path={ckpt}",
            trainer,
            f"hydra.run.dir={out}",
            f"paths.log_dir={tmp_path / 'logs'}",
        )
        assert r.returncode == 0, r.stderr[-3000:]
        results[name] = json.loads((out / "metrics.json").read_text())
    for key in ("test/acc", "test/loss", "test/f1"):
        assert results["ddp"][key] == pytest.approx(results["single"][key], abs=1e-6), key
