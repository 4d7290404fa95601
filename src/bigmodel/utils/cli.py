"""One error and exit-code policy for every entry point (train, eval, generate, estimate, ...).

``@entry_point("train")`` replaces ``@hydra.main(...)`` on an entry point's task function and adds:

- **User errors** (:class:`~bigmodel.utils.errors.ConfigError`, and Hydra's own composition errors
  such as an unknown override key) print the message alone to stderr and exit 2; the traceback goes
  to the job log, and to the terminal with ``HYDRA_FULL_ERROR=1``. Anything else exits 1 (Hydra's
  trimmed traceback). See CONVENTIONS.md, "Run status and exit codes".
- **Run status**: a failed single run writes ``metrics.json`` with ``status: failed``, ``error_type``
  and ``error``. A run that failed on a user error before writing anything but its logs leaves no run
  directory behind (e.g. not under the default experiment when a resume names the wrong one).
- **Multirun**: a failing job does not stop the sweep (Hydra's basic launcher stops at the first
  exception): its traceback goes into its own log, its ``metrics.json`` says ``failed``, its objective
  is NaN, and :class:`RunLifecycle` lists every failed job at the end; the process then exits 2 (all
  failures were user errors) or 1. A trial pruned by an Optuna sweep (``optuna.TrialPruned``) is not a
  failure: its ``metrics.json`` says ``status: completed`` (CONVENTIONS.md has three statuses; a pruned
  trial stopped by decision, like early stopping) with ``pruned`` saying why, and the sweep goes on.
- **Multirun x DDP**: Lightning re-launches ``sys.argv`` for ranks > 0 (its subprocess launcher adds only
  ``hydra.run.dir``); in a multirun that replays the whole sweep into a second sweep directory (and a
  second Optuna study). Each job therefore exports its own overrides and directory, and a re-launched
  rank runs exactly that one job in that directory (:func:`_single_job_argv`).
- **Quiet console**: known noise is dropped from the start (:mod:`bigmodel.utils.quiet`), and shown
  again once the config says ``extras.ignore_warnings=false``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import gc
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

from bigmodel.utils import quiet
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import CONFIG_DIR, code_mismatch

log = logging.getLogger(__name__)

# Exported by a multirun job for the ranks Lightning re-launches (they inherit the environment).
JOB_DIR_ENV = "BIGMODEL_JOB_DIR"
JOB_OVERRIDES_ENV = "BIGMODEL_JOB_OVERRIDES"
USER_ERROR = 2

_state: dict[str, Any] = {"task_started": False, "failed_jobs": []}


def entry_point(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``@hydra.main(config_path=configs/, config_name=...)`` plus the error policy above."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        hydra_main = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(
            _guard_task(task)
        )

        @functools.wraps(task)
        def main() -> Any:
            # At exit, the interpreter's last garbage collections walk every object torch and Lightning
            # made at import: about 2.5 s of CPU per command on this 2-core machine. Freezing them first
            # skips that walk. Exit work that matters is in atexit handlers (logging, W&B, multiprocessing,
            # weakref.finalize), which run either way; gc.freeze is the gc module's documented tool for it.
            atexit.register(gc.freeze)
            _state.update(task_started=False, failed_jobs=[])
            quiet.apply(True)  # the config is not composed yet; RunLifecycle and the task apply its switch
            sys.argv = _single_job_argv(sys.argv, os.environ)
            try:
                result = hydra_main()
            except SystemExit as e:
                # Hydra exits 1 after printing a composition error (unknown key, bad override, missing
                # config): the task never ran, so it was the command line -> a user error.
                if e.code == 1 and not _state["task_started"]:
                    sys.exit(USER_ERROR)
                raise
            failed = _state["failed_jobs"]
            if failed:
                sys.exit(USER_ERROR if all(f["error_type"] == "ConfigError" for f in failed) else 1)
            return result

        return main

    return decorate


def _guard_task(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    @functools.wraps(task)
    def guarded(cfg: DictConfig) -> Any:
        _state["task_started"] = True
        _apply_quiet(cfg)
        if mismatch := code_mismatch():
            log.warning(mismatch)
        started = time.time()
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        output_dir = Path(hc.runtime.output_dir)
        dist_env = {k: os.environ.get(k) for k in _LAUNCHER_ENV}
        if multirun:
            os.environ[JOB_DIR_ENV] = str(output_dir)
            os.environ[JOB_OVERRIDES_ENV] = json.dumps(list(hc.overrides.task))
        try:
            try:
                _check_interpolations(cfg)
                return task(cfg)
            except (InterpolationKeyError, MissingMandatoryValue) as e:
                raise _mismatched_groups_error(e, hc) from e
        except Exception as e:
            if type(e).__name__ == "RunInterrupted":  # bigmodel.callbacks.graceful_stop (torch import)
                _interrupted(cfg, output_dir, e, started)  # exits 143 / 130, a sweep included
            # optuna.TrialPruned, raised by bigmodel.callbacks.optuna_pruning in an Optuna sweep's trial
            if multirun and type(e).__name__ == "TrialPruned":
                _write_status(cfg, output_dir, started, status="completed", pruned=str(e))
                log.info("Trial pruned (%s): %s", output_dir, e)
                return math.nan  # the sweeper reads `pruned` from metrics.json
            user_error = isinstance(e, ConfigError)
            _log_to_files(e)
            _write_failed_metrics(cfg, output_dir, e, started)
            if multirun and type(e).__name__ == "ObjectiveNotLogged":
                # every further trial would be the same: stop the sweep now (bigmodel.utils.objective)
                sys.stderr.write(f"Error: {e}\n")
                sys.exit(USER_ERROR)
            if multirun:
                # keep the sweep going; the summary at the end lists this job
                sys.stderr.write(f"Job {hc.job.num} failed ({output_dir}): {type(e).__name__}: {e}\n")
                return math.nan
            if not user_error or _full_error():
                raise  # Hydra prints it (trimmed traceback, or the full one with HYDRA_FULL_ERROR=1), exit 1
            sys.stderr.write(f"Error: {e}\n")
            _remove_if_only_logs(output_dir, cfg)
            sys.exit(USER_ERROR)
        finally:
            if multirun:
                _end_process_group()
                _restore_env(dist_env)

    return guarded


def _apply_quiet(cfg: DictConfig) -> None:
    quiet.apply(bool(cfg.get("extras", {}).get("ignore_warnings", True)))


def _interrupted(cfg: DictConfig, output_dir: Path, e: Any, started: float) -> None:
    """SIGTERM/SIGINT after the checkpoint was saved: ``metrics.json`` says ``interrupted`` with the step,
    and the process exits 143/130 (a multirun stops too: the user or the cluster asked for it)."""
    if _is_rank_zero() and output_dir.is_dir():
        from bigmodel.utils.run import write_metrics

        write_metrics(
            output_dir / "metrics.json",
            {
                "status": "interrupted",
                "step": e.step,
                "signal": signal_name(e.signum),
                "last_ckpt_path": e.ckpt_path,
                "experiment": cfg.get("task_name"),
                "seed": cfg.get("seed"),
                "output_dir": str(output_dir),
                "wall_s": round(time.time() - started, 3),
            },
        )
    sys.stderr.write(f"{e}\n")
    sys.exit(e.exit_code)


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _check_interpolations(cfg: DictConfig) -> None:
    """Resolve the sections the task instantiates, so that groups which do not fit together (a key reading a
    missing key) fail now, before the task imports torch and Lightning: about 1 s instead of 13 s. Only a
    missing key is raised here; any other resolution error surfaces where the task reads that key, as before."""
    for section in ("data", "model", "trainer", "callbacks", "logger"):
        node = cfg.get(section)
        if isinstance(node, DictConfig):
            try:
                OmegaConf.to_container(node, resolve=True)
            except InterpolationKeyError:
                raise
            except Exception:  # noqa: BLE001, S112  (reported by the task itself, with its context)
                continue


def _mismatched_groups_error(e: Exception, hc: Any) -> ConfigError:
    """A key that reads a missing key (e.g. the default experiment's CNN reads ``data.in_channels`` under
    ``data=text_classification``): the chosen groups do not fit together; name the experiments that fit."""
    choices = dict(hc.runtime.choices)
    data, experiment = choices.get("data"), choices.get("experiment")
    fitting = sorted(
        p.stem
        for p in (CONFIG_DIR / "experiment").glob("*.yaml")
        if data and f"override /data: {data}" in p.read_text()
    )
    hint = (
        f" Pick an experiment made for data={data}: " + ", ".join(f"experiment={n}" for n in fitting) + "."
        if fitting
        else " Pick an experiment that matches the data (configs/experiment/), or set the missing key."
    )
    key = getattr(e, "full_key", None) or "?"
    return ConfigError(
        f"Config key {key}: {str(e).splitlines()[0]}. The config groups do not fit together "
        f"(data={data}, experiment={experiment}).{hint}"
    )


# What Lightning's subprocess launcher sets in the launching process; left set, the next job of a multirun
# takes LOCAL_RANK as "processes are created externally" and waits forever for a rank 1 it never starts.
_LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "RANK")


def _restore_env(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _end_process_group() -> None:
    """Lightning keeps the DDP process group after ``fit``; the next job of an in-process multirun
    launches new rank processes, which cannot join the old group (gloo "connection closed"). End it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _is_rank_zero() -> bool:
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _log_to_files(e: BaseException) -> None:
    """Write the traceback into the job log only (the terminal gets the message alone)."""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, "Run failed:\n%s", (text,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _write_failed_metrics(cfg: DictConfig, output_dir: Path, e: BaseException, started: float) -> None:
    _write_status(cfg, output_dir, started, status="failed", error_type=type(e).__name__, error=str(e))


def _write_status(cfg: DictConfig, output_dir: Path, started: float, **status: Any) -> None:
    """``metrics.json`` of a run that did not complete: ``status`` (``failed`` with ``error_type`` and
    ``error``, or ``completed`` with ``pruned`` saying why for a trial an Optuna sweep pruned) and the
    run's identity."""
    if not _is_rank_zero() or not output_dir.is_dir():
        return
    from bigmodel.utils.run import write_metrics_file  # rank checked above, without Lightning

    write_metrics_file(
        output_dir / "metrics.json",
        {
            **status,
            "experiment": cfg.get("task_name"),
            "seed": cfg.get("seed"),
            "output_dir": str(output_dir),
            "wall_s": round(time.time() - started, 3),
        },
    )


# What a run writes before it starts to work: Hydra's config copy, the job log, the config tree, and the
# failed-run metrics.json written just above.
_LOG_ONLY = {".hydra", "config_tree.log", "metrics.json"}


def _remove_if_only_logs(output_dir: Path, cfg: DictConfig) -> None:
    """Remove a run directory that holds nothing but logs, then its empty ``runs/`` and ``<task>/`` parents,
    so a failed start leaves no run behind (e.g. under the default experiment)."""
    if not _is_rank_zero() or not output_dir.is_dir():
        return
    if any(p.name not in _LOG_ONLY and p.suffix != ".log" for p in output_dir.iterdir()):
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    log_dir = Path(str(cfg.paths.log_dir)).resolve() if "paths" in cfg else None
    for parent in list(output_dir.resolve().parents)[:2]:
        if parent == log_dir:
            break
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break


# Hydra flags that take a value and must reach a re-launched rank unchanged.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def _single_job_argv(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """For a rank > 0 that Lightning re-launched from a multirun job: the command of that single job,
    in that job's directory. Otherwise ``argv`` unchanged.

    Lightning's subprocess launcher runs ``sys.argv`` (``-m`` and sweep included) plus
    ``hydra.run.dir=... hydra.job.name=train_ddp_process_N hydra.output_subdir=null``.
    """
    job_dir, overrides = env.get(JOB_DIR_ENV), env.get(JOB_OVERRIDES_ENV)
    if not job_dir or overrides is None or env.get("LOCAL_RANK", "0") == "0":
        return argv
    kept: list[str] = []
    job_name = "train_ddp_process_" + env["LOCAL_RANK"]
    args = iter(argv[1:])
    for a in args:
        if a in _CONFIG_FLAGS:
            kept += [a, next(args, "")]
        elif a.startswith(tuple(f + "=" for f in _CONFIG_FLAGS)):
            kept.append(a)
        elif a.startswith("hydra.job.name="):
            job_name = a.split("=", 1)[1]
    quoted_dir = job_dir.replace("\\", "\\\\").replace('"', '\\"')
    return [
        argv[0],
        *kept,
        *json.loads(overrides),
        f'hydra.run.dir="{quoted_dir}"',
        f"hydra.job.name={job_name}",
        "hydra.output_subdir=null",
        "hydra.mode=RUN",
    ]


class RunLifecycle(Callback):
    """Hydra callback (``hydra.callbacks`` in configs/hydra/default.yaml).

    - ``on_run_start`` / ``on_multirun_start``: the run (or sweep) directory must take a 1 MiB write
      (not creatable, a full disk, ``ulimit -f``), else a clear message naming the path and exit 2 (instead of an ``OSError`` traceback from Hydra).
    - ``on_multirun_end``: list every failed job (directory and error) from the jobs' ``metrics.json``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _apply_quiet(config)
        self._check_writable(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _apply_quiet(config)  # before the sweeper is built (Optuna's storage imports alembic)
        self._check_writable(config, "hydra.sweep.dir")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed = []
        for path in sorted(sweep_dir.glob("**/metrics.json")):
            try:
                m = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if m.get("status") == "failed":
                failed.append({"dir": str(path.parent), **m})
        _state["failed_jobs"] = failed
        if failed:
            lines = [f"{len(failed)} multirun job(s) failed (sweep {sweep_dir}):"]
            lines += [f"  {f['dir']}: {f.get('error_type')}: {f.get('error')}" for f in failed]
            sys.stderr.write("\n".join(lines) + "\n")

    @staticmethod
    def _check_writable(config: DictConfig, key: str) -> None:
        if not _is_rank_zero():
            return
        try:
            path = Path(str(_select(config, key)))
        except Exception:  # an interpolation error: Hydra reports it itself
            return
        probe = path / ".write_test"
        try:
            path.mkdir(parents=True, exist_ok=True)
            # a real write, not a touch: a full disk or a file-size limit (`ulimit -f`) fails here, at
            # start-up, instead of at the first checkpoint hours later
            with open(probe, "wb") as f:
                f.write(b"\0" * _PROBE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            full = e.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", -1))
            sys.stderr.write(
                f"Error: cannot write the run directory {path} ({key}): {e.strerror or e}"
                f"{' (the disk is full or a file-size limit is set: free space, or check ulimit -f)' if full else ''}. "
                "Point paths.log_dir (or hydra.run.dir / hydra.sweep.dir) at a writable folder, "
                "e.g. paths.log_dir=/tmp/bigmodel-logs.\n"
            )
            sys.exit(USER_ERROR)
        finally:
            with contextlib.suppress(OSError):  # e.g. the parent is a regular file: nothing to remove
                probe.unlink()
        free_mib = shutil.disk_usage(path).free / 2**20
        if free_mib < _LOW_SPACE_MIB:
            log.warning("Only %.0f MiB free under %s: checkpoints may not fit.", free_mib, path)


_PROBE_BYTES = 1 << 20  # 1 MiB
_LOW_SPACE_MIB = 1024


def _select(config: DictConfig, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node
