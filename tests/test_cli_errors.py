"""User errors of every entry point, run through `make` as a user would: the message alone on stderr, exit
code 2 (make reports the recipe's code as "Error 2"), no traceback; no run directory is left behind.
Also: make pass-through keeps `${...}` values intact (defect list of issue #11)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from bigmodel.utils.resolvers import PROJECT_ROOT


def make(target: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``make -o .venv/.installed <target> <args>`` in the repository (never reinstalls)."""
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env.update(PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", target, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )


def assert_user_error(p: subprocess.CompletedProcess, *expected: str) -> None:
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "Error 2" in p.stderr, out  # make: *** [Makefile:NN: train] Error 2 -> the program exited 2
    assert "Traceback" not in out, out
    for text in expected:
        assert text in p.stderr, out


@pytest.fixture
def logs(tmp_path) -> Path:
    return tmp_path / "logs"


def quiet(logs: Path) -> list[str]:
    return [f"paths.log_dir={logs}", "extras.print_config=false"]


@pytest.mark.parametrize(
    ("target", "args", "expected"),
    [
        ("train", ["ckpt_path=/nope.ckpt"], ["Checkpoint not found", "/nope.ckpt"]),
        ("train", ["ckpt_path=last", "experiment=digits_mlp"], ["ckpt_path=last", "'digits_mlp'"]),
        ("train", ["trainer.max_epoch=1"], ["trainer.max_epoch", "+trainer.max_epoch"]),  # names the fix
        ("train", ["data=text_classification"], ["data.in_channels", "experiment=sms_spam_transformer"]),
        ("eval", [], ["ckpt_path"]),
        ("eval", ["ckpt_path=/nope.ckpt"], ["/nope.ckpt"]),
        ("generate", ["ckpt_path=/nope.ckpt"], ["/nope.ckpt"]),
        ("estimate", [], ["needs a net"]),
        ("estimate", ["estimate.no_such_key=1"], ["no_such_key"]),
    ],
)
def test_user_errors_exit_2_without_traceback(target, args, expected, logs):
    p = make(target, *args, *quiet(logs))
    assert_user_error(p, *expected)
    # a failed start leaves no run directory behind
    assert not list(logs.glob("*/runs/*")), list(logs.glob("*/runs/*"))


def test_full_error_keeps_the_traceback(logs):
    p = make("train", "ckpt_path=/nope.ckpt", *quiet(logs), env={"HYDRA_FULL_ERROR": "1"})
    assert p.returncode != 0
    assert "Traceback" in p.stderr and "/nope.ckpt" in p.stderr


def test_unwritable_log_dir_names_the_path(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    bad = tmp_path / "file" / "logs"
    p = make("train", f"paths.log_dir={bad}", "extras.print_config=false")
    assert_user_error(p, str(bad), "paths.log_dir")


def test_resume_with_another_experiments_checkpoint_names_it(tmp_path, logs):
    """The checkpoint of a digits_mlp run resumed without experiment= (so the default digits_cnn config):
    the message names the checkpoint's experiment, and nothing is left under logs/digits_cnn."""
    ckpt = tmp_path / "mlp.ckpt"
    torch.save(
        {
            "hyper_parameters": {"net": {"_target_": "bigmodel.nets.big_mlp.BigMLP"}},
            "bigmodel": {"config": {"task_name": "digits_mlp"}},
        },
        ckpt,
    )
    p = make("train", f"ckpt_path={ckpt}", *quiet(logs))
    assert_user_error(p, str(ckpt), "experiment=digits_mlp")
    assert not (logs / "digits_cnn").exists()


def hydra_cfg(*args: str) -> str:
    p = make("train", *args)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_make_keeps_interpolations_in_command_variables():
    out = hydra_cfg("hydra.run.dir=${paths.log_dir}/x/${uid:}", "tags=[a, 'b c']", "ARGS=--cfg hydra")
    assert "dir: ${paths.log_dir}/x/${uid:}" in out


def test_make_keeps_interpolations_and_quotes_in_args():
    out = hydra_cfg("ARGS=--cfg job 'task_name=${seed}_x' \"tags=[x, 'y z']\"")
    assert "task_name: ${seed}_x" in out
    assert "- y z" in out


def test_make_passes_a_quoted_comma():
    out = hydra_cfg(
        "data.delimiter=','", "ARGS=--cfg job data=text_classification experiment=sms_spam_transformer"
    )
    assert "delimiter: ','" in out
