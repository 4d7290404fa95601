"""Issue #13: a run killed with SIGKILL at an arbitrary step and resumed from its last checkpoint ends with
the same weights, the same logged train/loss sequence and the same optimizer-step count as an uninterrupted
run with the same seed (CPU, trainer.deterministic=true)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from tests.conftest import QUIET, SHARED_DATA, run_cli

KILL = ["+callbacks.kill._target_=tests.helpers.kill_at_step.KillAtStep"]


def _losses(run: Path) -> dict[int, float]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


def _weights(run: Path) -> tuple[dict[str, torch.Tensor], int]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"], ckpt["global_step"]


def _kill_and_resume(tmp_path: Path, common: list[str], kill_step: int, env: dict | None = None) -> None:
    """Run A uninterrupted, B killed after ``kill_step``, C resumed from B's last.ckpt; compare A with B+C."""
    common = [*QUIET, f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path / 'cache'}", *common]
    a, b, c = (tmp_path / n for n in "ABC")
    p = run_cli("bigmodel.train", *common, f"hydra.run.dir={a}", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    p = run_cli(
        "bigmodel.train", *common, f"hydra.run.dir={b}", *KILL, f"+callbacks.kill.step={kill_step}", env=env
    )
    assert p.returncode == -9, p.stderr[-3000:]  # killed: no handler ran
    resumed_from = torch.load(b / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < resumed_from <= kill_step
    p = run_cli(
        "bigmodel.train",
        *common,
        f"hydra.run.dir={c}",
        f"ckpt_path={b / 'checkpoints' / 'last.ckpt'}",
        env=env,
    )
    assert p.returncode == 0, p.stderr[-3000:]

    (wa, step_a), (wc, step_c) = _weights(a), _weights(c)
    # Lightning has taken one optimizer step too many after a mid-epoch resume: the counts must match
    assert step_c == step_a
    diff = max((wa[k].float() - wc[k].float()).abs().max().item() for k in wa)
    assert diff <= 1e-6, f"resumed from step {resumed_from}: max abs weight difference {diff}"
    la, lb, lc = _losses(a), _losses(b), _losses(c)
    assert min(lc) <= resumed_from  # the resumed run logs every step after its checkpoint
    joined = {**{s: v for s, v in lb.items() if s < min(lc)}, **lc}
    assert joined == la, f"resumed from step {resumed_from}"


DIGITS = [
    "experiment=digits_cnn",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=8",
    "+trainer.limit_val_batches=2",
    "trainer.deterministic=true",
    "trainer.log_every_n_steps=1",
    "callbacks=[default,model_checkpoint_steps]",
    "callbacks.model_checkpoint_steps.every_n_train_steps=3",
    "test=false",
]


@pytest.mark.parametrize(
    "kill_step",
    [
        pytest.param(random.Random(13).randint(4, 7), marks=pytest.mark.slow),
        random.Random(13).randint(10, 15),
    ],
)
def test_digits_kill_9_and_resume_is_exact(tmp_path, kill_step):
    """A kill inside epoch 0 (resume from a step checkpoint) and one in epoch 1 (mid-epoch, after the
    epoch-end checkpoint and the step ones)."""
    _kill_and_resume(tmp_path, DIGITS, kill_step)


@pytest.mark.slow  # 3 LM processes, ~100 s of CPU; the fast suite keeps the digits kill in epoch 1 above
def test_shakespeare_kill_9_and_resume_is_exact(tmp_path, shared_data):
    """The random-window LM sampler (with replacement), dropout on, a kill after the epoch boundary: the
    resume starts from the checkpoint of the epoch's last batch."""
    common = [
        "experiment=shakespeare_char_gpt",
        f"paths.data_dir={SHARED_DATA}",
        "trainer.max_steps=20",
        "trainer.val_check_interval=8",
        "+trainer.limit_val_batches=2",
        "trainer.deterministic=true",
        "trainer.log_every_n_steps=1",
        "callbacks.model_checkpoint_steps.every_n_train_steps=3",
        "data.samples_per_epoch=384",  # 12 batches of 32
        "model.net.dropout=0.1",
        "test=false",
    ]
    _kill_and_resume(tmp_path, common, kill_step=random.Random(13).randint(13, 17))


@pytest.mark.slow
def test_digits_ddp_cpu_kill_9_and_resume_is_exact(tmp_path):
    _kill_and_resume(tmp_path, [*DIGITS, "trainer=ddp_cpu"], kill_step=11)
