"""A fork server for the tests that run ``python -m bigmodel.<entry point>`` (tests.conftest.run_cli).

Why: a fresh ``python -m bigmodel.train`` spends about 10 s of CPU importing torch and Lightning before it does
anything (Lightning's version check imports all of torchmetrics, and through it torchvision, torch._dynamo,
transformers and scipy). ``make test`` starts a few dozen of them. This server imports those libraries once per
pytest worker; each request forks it and runs the entry point in the child, as ``python -m`` would
(``runpy.run_module(..., run_name="__main__", alter_sys=True)``), with the request's argv, cwd, environment and
stdout/stderr files. The child is a real, separate process: its exit code, signals (kill -9 gives -9), stdout,
stderr, files and atexit handlers are its own; only the already-imported libraries are shared.

What differs from a cold start, so run_cli falls back to a plain subprocess for it:
- a cwd other than the project root (``python -m`` puts the cwd first on sys.path);
- an environment that differs in a variable the libraries read when they are imported (thread counts, HF/torch
  switches, PYTHON*), because those imports already happened here;
- warnings the libraries print while they are imported happen once, here, not in the child. The tests of what a
  user sees on the console (tests/test_console.py, tests/test_cli_errors.py) start ``make`` themselves and so never
  come here.
``BIGMODEL_TEST_FORKSERVER=0`` turns the server off: every run_cli is then a plain subprocess.

Protocol (one connection per run, on a Unix socket): the client sends one JSON line ``{module, args, cwd, env}``
with two file descriptors (stdout, stderr files) attached; the server answers ``pid <n>`` and, when the child has
ended, ``exit <returncode>`` (negative: killed by that signal, like subprocess).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import runpy
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Imported once here, shared copy-on-write by every child. Only libraries: our own modules stay fresh per run.
PRELOAD = ("torch", "lightning.pytorch", "torchmetrics", "hydra", "omegaconf", "rich", "sklearn.datasets")
# Environment variables read at import time by what PRELOAD imports (or by the interpreter itself)
IMPORT_TIME_ENV = ("OMP_", "MKL_", "KMP_", "OPENBLAS_", "HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "CUDA_",
                   "PYTHON", "LD_", "TOKENIZERS_")  # fmt: skip


def import_time_env_differs(
    a: dict[str, str], b: dict[str, str], added: dict[str, str] | None = None
) -> list[str]:
    """The variables, among those read at import time, whose values differ between ``a`` and ``b``, except
    those that the imports themselves set (``added``: torch's KMP_*, TORCHINDUCTOR_CACHE_DIR, ...) when ``a``
    lacks them or has the value the imports gave (a process that has imported torch has them, one that has
    not does not; either way its own imports would end with the same value)."""
    added = added or {}
    keys = {k for k in (*a, *b) if k.startswith(IMPORT_TIME_ENV) and k != "PYTHONUNBUFFERED"}
    return sorted(
        k for k in keys if a.get(k) != b.get(k) and not (k in added and a.get(k) in (None, added[k]))
    )


def _child(req: dict, fds: list[int]) -> None:
    """Turn this forked process into ``python -m <module> <args>`` and run it; never returns normally."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    for src, dst in ((devnull, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(src, dst)
    for fd in (devnull, *fds):
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    # the signal dispositions of a fresh interpreter
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    if "numpy" in sys.modules:  # a fresh process draws its own numpy seed; forked children would share one
        sys.modules["numpy"].random.seed()
    gc.enable()
    sys.argv = [req["module"], *req["args"]]
    runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)  # SystemExit (here or from the entry point) ends the child through normal interpreter exit


def _monitor(conn: socket.socket, req: dict, fds: list[int]) -> None:
    """Fork the run, report its pid and exit code on ``conn``, then leave (never returns in this process)."""
    pid = os.fork()
    if pid == 0:
        conn.close()
        _child(req, fds)  # raises SystemExit at its end, through the caller's frames to the interpreter
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)


def serve(path: str, owner: int) -> None:
    """Serve runs on the Unix socket ``path`` until the process ``owner`` (the pytest session) has ended."""
    # The gc module's recipe for a fork server: without the freeze, each child's exit walks (and copies on
    # write) every object the imports made, 3 s of the 3.4 s a trivial run took; with it, 0.8 s.
    gc.disable()
    before = dict(os.environ)
    for name in PRELOAD:
        __import__(name)
    gc.freeze()
    # variables the imports themselves set (torch sets KMP_*, TORCHINDUCTOR_CACHE_DIR, ...): a fresh process
    # gets them from its own imports, so each child gets them too, unless its request sets them
    added = {k: v for k, v in os.environ.items() if k not in before}
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    srv.settimeout(1.0)  # to notice, within a second, that the session is over
    with open(os.path.join(os.path.dirname(path), "env.json"), "w") as f:
        json.dump({"before": before, "added": added}, f)  # what its imports saw, and what they set
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped automatically
    print("ready", flush=True)
    while True:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.dirname(path), ignore_errors=True)
                return
            continue
        conn.settimeout(None)
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
        while msg and not msg.endswith(b"\n"):
            chunk = conn.recv(1 << 20)
            msg = msg + chunk if chunk else b""
        if msg and len(fds) == 2 and os.fork() == 0:  # the monitor: waits for the run, this loop goes on
            srv.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # SIG_IGN would reap the run before waitpid sees it
            req = json.loads(msg)
            req["env"] = {**added, **req["env"]}
            _monitor(conn, req, fds)
        conn.close()  # (a connection that sent no request, e.g. a liveness probe, is dropped here)
        for fd in fds:
            os.close(fd)


class Client:
    """The test process's side. One server per pytest session (``owner``: the xdist controller's pid, or this
    process's without xdist), started by the first worker that needs it and shared by the others: its import
    costs about 10 s of CPU, once instead of once per worker. It ends by itself when the session has."""

    def __init__(self, root: Path, env: dict[str, str], owner: int):
        self.root, self.env, self.owner = root, env, owner
        self._dir = Path(tempfile.gettempdir()) / f"bigmodel-forkserver-{os.getuid()}-{owner}"
        self.path = str(self._dir / "sock")
        self._lock = threading.Lock()
        self._ready = False
        self.added: dict[str, str] = {}

    def _alive(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.path)
                return True
            except OSError:
                return False

    def ensure(self) -> None:
        """Start the session's server unless it runs (blocks until it is ready)."""
        with self._lock:
            if self._ready:
                return
            self._dir.mkdir(exist_ok=True)
            with open(self._dir / "lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here while one starts it
                if not self._alive():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    cmd = [sys.executable, "-m", "tests.helpers.forkserver", self.path, str(self.owner)]
                    proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
                    if proc.stdout.readline().strip() != "ready":
                        raise RuntimeError(f"the test fork server did not start (exit {proc.wait()})")
                    proc.stdout.close()
                # the environment its imports saw (another process of the session may have started it)
                seen = json.loads((self._dir / "env.json").read_text())
                self.env, self.added = seen["before"], seen["added"]
            self._ready = True

    def spawn(self, module: str, args: list[str], cwd: Path, env: dict[str, str], stdout: int, stderr: int):
        """Start ``python -m module *args`` writing to the file descriptors ``stdout`` and ``stderr``; returns a
        :class:`ServedProcess` (``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``), like ``Popen``."""
        self.ensure()
        req = json.dumps({"module": module, "args": list(args), "cwd": str(cwd), "env": env}) + "\n"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        socket.send_fds(sock, [req.encode()], [stdout, stderr])
        return ServedProcess(sock, [sys.executable, "-m", module, *args])

    def run(self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float):
        """Like ``subprocess.run([python, "-m", module, *args], capture_output=True, text=True, ...)``."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = self.spawn(module, args, cwd, env, out.fileno(), err.fileno())
            try:
                code = proc.wait(timeout)
            except BaseException:  # a timeout, Ctrl-C, pytest-timeout: the run must not outlive its test
                proc.kill()
                raise
            out.seek(0), err.seek(0)
            # text=True's universal newlines: "\r\n" and a progress bar's "\r" read as "\n"
            text = [f.read().decode().replace("\r\n", "\n").replace("\r", "\n") for f in (out, err)]
        return subprocess.CompletedProcess(proc.args, code, text[0], text[1])


class ServedProcess:
    """A run started by the fork server, with the part of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, sock: socket.socket, args: list[str]):
        self.args, self.returncode = args, None
        self._sock, self._buf = sock, b""
        self.pid = int(self._line(None).split()[1])

    def _line(self, timeout: float | None) -> str | None:
        while b"\n" not in self._buf:
            if not select.select([self._sock], [], [], timeout)[0]:
                return None
            chunk = self._sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"the test fork server dropped the run {self.args}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def poll(self) -> int | None:
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (negative: the signal that killed it); ``subprocess.TimeoutExpired`` after
        ``timeout`` seconds, except that ``timeout=0`` (poll) returns None while it runs."""
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                if timeout == 0:
                    return None
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = int(line.split()[1])
            self._sock.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it has just ended
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
