"""The tests' fork server (tests/helpers/forkserver.py) gives what a plain ``python -m`` subprocess gives:
argv, cwd, environment, stdout, stderr, exit code, death by signal, its own pid, and timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.conftest import run_cli
from tests.helpers.forkserver import import_time_env_differs


def _both(monkeypatch, *args, env=None):
    if os.environ.get("BIGMODEL_TEST_FORKSERVER") == "0":
        pytest.skip("the fork server is turned off (BIGMODEL_TEST_FORKSERVER=0)")
    served = run_cli("tests.helpers.probe", *args, env=env)
    monkeypatch.setenv("BIGMODEL_TEST_FORKSERVER", "0")
    plain = run_cli("tests.helpers.probe", *args, env=env)
    monkeypatch.delenv("BIGMODEL_TEST_FORKSERVER")
    return served, plain


@pytest.mark.parametrize("code", ["0", "3"])
def test_served_run_matches_a_plain_subprocess(monkeypatch, code):
    served, plain = _both(monkeypatch, code, "PROBE_VAR", "WANDB_MODE", env={"PROBE_VAR": "x y"})
    assert served.returncode == plain.returncode == int(code)
    s, p = json.loads(served.stdout), json.loads(plain.stdout)
    assert s.pop("pid") not in (os.getpid(), p.pop("pid"))
    # the plain run is this process's child; the served one was forked by the server (its monitor)
    assert p.pop("ppid") == os.getpid() and s.pop("ppid") != os.getpid()
    assert s == p and s["env"]["PROBE_VAR"] == "x y" and s["argv0"] == "probe.py"
    assert served.stderr == plain.stderr == "to stderr\nand a bar\ndone\n"


def test_kill_9_is_minus_9(monkeypatch):
    served, plain = _both(monkeypatch, "kill")
    assert served.returncode == plain.returncode == -9
    assert json.loads(served.stdout)["argv"] == ["kill"] and json.loads(served.stdout)["ppid"] != os.getpid()


@pytest.mark.skipif(os.environ.get("BIGMODEL_TEST_FORKSERVER") == "0", reason="the fork server is turned off")
def test_an_interrupted_test_kills_its_run(monkeypatch):
    """Ctrl-C (or pytest-timeout) while a served run is going: the run is killed, not left behind."""
    from tests.helpers import forkserver

    started = []
    real_wait = forkserver.ServedProcess.wait

    def interrupted(self, timeout=None):
        if timeout == 0:
            return real_wait(self, 0)
        started.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(forkserver.ServedProcess, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_cli("tests.helpers.sleeper", timeout=600)
    monkeypatch.undo()
    assert started and started[0].wait(timeout=30) == -9


def test_a_timeout_kills_the_run():
    t = time.time()
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("tests.helpers.sleeper", timeout=2)
    assert time.time() - t < 30


def test_import_time_variables_are_told_apart():
    assert import_time_env_differs({"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "2"}) == ["OMP_NUM_THREADS"]
    assert import_time_env_differs({"HF_HUB_OFFLINE": "1"}, {}) == ["HF_HUB_OFFLINE"]
    assert import_time_env_differs({"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}, {}) == []
    # set by torch's own import: the same value, or none, is no difference; another value is
    added = {"KMP_INIT_AT_FORK": "FALSE"}
    assert import_time_env_differs({"KMP_INIT_AT_FORK": "FALSE"}, {}, added) == []
    assert import_time_env_differs({}, {}, added) == []
    assert import_time_env_differs({"KMP_INIT_AT_FORK": "TRUE"}, {}, added) == ["KMP_INIT_AT_FORK"]


def test_started_run_polls_and_dies_by_sigterm(tmp_path):
    from tests.conftest import start_cli

    proc = start_cli("tests.helpers.sleeper", log=tmp_path / "log")
    assert proc.poll() is None and proc.pid != os.getpid()
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    proc.send_signal(15)
    assert proc.wait(timeout=30) == -15 and proc.poll() == -15


@pytest.mark.skipif(os.environ.get("BIGMODEL_TEST_FORKSERVER") == "0", reason="the fork server is turned off")
def test_this_worker_is_served_after_importing_torch():
    """A worker that has imported torch (every worker of make test has) still forks from the server: a
    silent fallback to cold subprocesses would cost make test minutes."""
    import torch  # noqa: F401  (sets KMP_* and TORCHINDUCTOR_CACHE_DIR in this process's environment)

    from bigmodel.utils.resolvers import PROJECT_ROOT
    from tests.conftest import _served

    assert _served(PROJECT_ROOT, {**os.environ, "PYTHONUNBUFFERED": "1"}) is not None
