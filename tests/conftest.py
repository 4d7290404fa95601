"""Shared test fixtures. Tests run offline, on CPU, with paths.data_dir at ../shared/data when present."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from bigmodel.utils.config import compose_run_config
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.helpers.forkserver import Client, import_time_env_differs
from tests.helpers.trained import digits_run  # noqa: F401  (session fixture: one trained default run)

# `make test ARGS=...` exports its command-line variables (ARGS itself, and MAKEFLAGS) to everything it starts:
# the tests that run `make train` would hand pytest's ARGS to the entry point (`--durations=25` as an override).
for _var in ("ARGS", "TEST_WORKERS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
    os.environ.pop(_var, None)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: one torch thread each (and in the processes the tests
    # start), else 2 workers x 2 threads oversubscribe a 2-core machine
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(os.environ.get("BIGMODEL_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")).resolve()
# Overrides that keep a test run small and quiet; tests add their own after these.
QUIET = ["extras.print_config=false", "callbacks.rich_progress_bar=null", "callbacks.rich_model_summary=null"]


@pytest.fixture
def shared_data() -> Path:
    """The real datasets of ../shared/data; skips the test when they are absent (e.g. a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set BIGMODEL_SHARED_DATA)")
    return SHARED_DATA


def compose_cfg(tmp_path: Path, overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` like the entry point does, with every output under
    ``tmp_path`` (log_dir, output_dir, cache_dir) and the data at ../shared/data."""
    return compose_run_config(
        config_name, [f"paths.data_dir={SHARED_DATA}", *overrides], tmp_path / "run", tmp_path
    )


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg(overrides, config_name="train")`` -> composed config writing under tmp_path."""

    def _make(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
        return compose_cfg(tmp_path, overrides, config_name)

    yield _make
    GlobalHydra.instance().clear()


_FORKSERVER: Client | None = None


def _fork_client() -> Client:
    global _FORKSERVER
    if _FORKSERVER is None:  # its environment is this process's at the first run
        owner = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()  # the session
        _FORKSERVER = Client(PROJECT_ROOT, {**os.environ, "PYTHONUNBUFFERED": "1"}, owner)
    return _FORKSERVER


def _served(cwd: Path, env: dict[str, str]) -> Client | None:
    """The session's fork server when a run from ``cwd`` with ``env`` can be forked from it, else None."""
    if os.environ.get("BIGMODEL_TEST_FORKSERVER", "1") == "0" or cwd.resolve() != PROJECT_ROOT.resolve():
        return None
    server = _fork_client()
    server.ensure()
    return None if import_time_env_differs(env, server.env, server.added) else server


def pytest_configure(config):
    """Under xdist (``make test``), the controller starts the fork server while the workers collect, so that
    no worker waits ~10 s for it at its first run. (A plain ``pytest`` starts it at its first run.)"""
    if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("BIGMODEL_TEST_FORKSERVER", "1") == "0":
        return
    if getattr(config.option, "numprocesses", None):
        os.environ.setdefault(
            "OMP_NUM_THREADS", "1"
        )  # what the workers set (above), so the server has it too
        threading.Thread(target=_fork_client().ensure, daemon=True).start()


def _cli_env(env: dict | None, unset: Sequence[str]) -> dict[str, str]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    for name in unset:
        full_env.pop(name, None)
    return full_env


def run_cli(
    module: str,
    *overrides: str,
    cwd: Path | None = None,
    timeout: float = 300,
    env: dict | None = None,
    unset: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <overrides>`` in its own process (the real entry point) and return it.

    From the project root, and with no change to a variable read at import time, the process is forked from
    the session's fork server (tests/helpers/forkserver.py: torch and Lightning already imported, ~10 s of CPU
    less per run); otherwise, or with ``BIGMODEL_TEST_FORKSERVER=0``, it is a plain subprocess. Its
    environment is this one's, updated with ``env``, without the variables named in ``unset``."""
    full_env, cwd = _cli_env(env, unset), Path(cwd or PROJECT_ROOT)
    if server := _served(cwd, full_env):
        return server.run(module, list(overrides), cwd, full_env, timeout)
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def start_cli(module: str, *overrides: str, log: Path, env: dict | None = None):
    """Start ``python -m <module> <overrides>`` from the project root with stdout and stderr to ``log``, and
    return it without waiting: a ``subprocess.Popen``, or the fork server's process with the same ``pid``,
    ``poll``, ``wait``, ``send_signal`` and ``kill`` (see :func:`run_cli` for when)."""
    full_env = _cli_env(env, ())
    with open(log, "wb") as f:
        if server := _served(PROJECT_ROOT, full_env):
            return server.spawn(module, list(overrides), PROJECT_ROOT, full_env, f.fileno(), f.fileno())
        cmd = [sys.executable, "-m", module, *overrides]
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=f, stderr=subprocess.STDOUT, env=full_env)


# The slow suite's full runs (a target accuracy after whole epochs) take 15 to 40 min each on this 2-core CPU;
# pyproject's 900 s per-test timeout is for make test. A slow test without its own timeout mark gets an hour.
SLOW_TIMEOUT_S = 3600


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


def pytest_unconfigure(config):
    """Each pytest process (the controller and every xdist worker) ends with torch imported: freeze its
    objects so that the interpreter's exit-time collections skip them (~2.5 s of CPU each; the entry points
    do the same, bigmodel.utils.cli)."""
    gc.freeze()
