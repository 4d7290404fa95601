"""Weights & Biases logger for bigmodel: never hangs without a network, one run per job, resumable.

Thin glue over Lightning's ``WandbLogger`` (https://lightning.ai/docs/pytorch/stable/extensions/generated/
lightning.pytorch.loggers.WandbLogger.html). What it adds:

- **Mode.** ``WANDB_MODE=offline|disabled|online`` wins. Else ``offline=true`` records offline. Else the run
  goes online only when an API key is found (``WANDB_API_KEY`` or ``~/.netrc`` from ``wandb login``) and
  the W&B host answers a TCP connect within ``connect_timeout_s``; otherwise it records offline, says why
  once, and prints the ``wandb sync <dir>`` command that uploads it later.
- **Names.** ``group`` defaults to the experiment name, or ``<experiment>-<sweep dir>`` for every job of
  one Hydra multirun; ``name`` to ``<experiment>-<run dir>``.
- **Resume.** The run id is written to ``<save_dir>/wandb/run_id.txt`` and (by
  :class:`bigmodel.loggers.tracking.WandbRunInCheckpoint`) into each checkpoint as ``checkpoint["wandb"]``;
  :meth:`resume_from_checkpoint` continues that run unless ``resume="never"``.
- **Checkpoints as artifacts** (``log_model``) also work offline: the artifact is recorded in the offline
  run and uploaded by ``wandb sync``. Aliases ``latest`` and ``best`` come from Lightning.
- One run per job: :meth:`finish` closes it, so the next job of a multirun (same process) gets its own.

Only rank 0 creates a run (Lightning's ``rank_zero_experiment``); other ranks get a no-op experiment.

Everything goes through Lightning's public constructor arguments (which it hands to ``wandb.init``) except
what is only known after construction: the mode (decided on rank 0 at first use, so no rank probes the
network for nothing) and the run id of a resumed run. Those go through :func:`_wandb_init_kwargs`, the one
place that touches a Lightning internal.
"""

from __future__ import annotations

import concurrent.futures
import logging
import netrc
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

RESUME_CHOICES = ("allow", "never", "must")
WATCH_CHOICES = ("gradients", "parameters", "all")
RUN_ID_FILE = "run_id.txt"


def _wandb_init_kwargs(logger: _LightningWandbLogger) -> dict[str, Any]:
    """The keyword arguments Lightning's ``WandbLogger`` passes to ``wandb.init`` on the first ``.experiment``.

    The only use of a Lightning internal in this package, checked against lightning 2.6.6: ``__init__``
    stores the arguments in ``_wandb_init`` and the ``experiment`` property reads that dict when it creates
    the run. Lightning has no public way to change them after construction, and we learn the mode (rank 0,
    first use) and a resumed run id (from the checkpoint) only later; Lightning also always adds
    ``anonymous=None``, a deprecated setting wandb warns about, which only this dict lets us drop.
    ``tests/loggers/test_wandb_logger.py::test_wandb_init_kwargs_reach_wandb_init`` fails when this changes.
    """
    return logger._wandb_init  # noqa: SLF001


def _base_url() -> str:
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    from wandb.sdk.lib.urls import DEFAULT_BASE_URL

    return DEFAULT_BASE_URL


def has_api_key(base_url: str) -> bool:
    """True when ``WANDB_API_KEY`` is set or ``~/.netrc`` (``$NETRC``) has an entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC")).authenticators(urlparse(base_url).hostname or "")
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def host_reachable(base_url: str, timeout_s: float) -> bool:
    """True when a TCP connection to the host of ``base_url`` opens within ``timeout_s`` seconds.

    Runs in a worker thread so that a slow DNS lookup cannot outlast the timeout either."""
    url = urlparse(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)

    def connect() -> bool:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout_s + 0.5)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)


def _env_mode() -> str:
    return os.environ.get("WANDB_MODE", "").strip().lower()


def decide_mode(offline: bool, connect_timeout_s: float = 2.0) -> tuple[str, str]:
    """``(mode, reason)`` with mode ``online``, ``offline`` or ``disabled``; reason is why a run that
    could have gone online is offline ("" otherwise). Never waits more than ~``connect_timeout_s``."""
    env = _env_mode()
    if env == "disabled":
        return "disabled", ""
    if env in ("offline", "dryrun"):
        return "offline", ""
    if env == "online":
        return "online", ""
    if offline:
        return "offline", ""
    base_url = _base_url()
    if not has_api_key(base_url):
        return "offline", "no W&B API key found (set WANDB_API_KEY or run `wandb login`)"
    if not host_reachable(base_url, connect_timeout_s):
        return "offline", f"{base_url} could not be reached (TCP connect, {connect_timeout_s:g} s timeout)"
    return "online", ""


def _hydra_context() -> tuple[bool, str, int]:
    """``(is_multirun, sweep dir name, job number)`` of the running Hydra job; ``(False, "", 0)`` outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        return hc.mode == RunMode.MULTIRUN, Path(hc.sweep.dir).name, int(hc.job.get("num") or 0)
    except (ValueError, ImportError, AttributeError):
        return False, "", 0


def run_id_from_checkpoint(ckpt_path: str | Path) -> str | None:
    """The W&B run id stored in a checkpoint (``checkpoint["wandb"]["id"]``), else in the run directory
    that holds it (``<run>/wandb/run_id.txt`` next to ``<run>/checkpoints/``), else ``None``."""
    import torch

    ckpt_path = Path(ckpt_path)
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
        run_id = (ckpt.get("wandb") or {}).get("id")
        if run_id:
            return str(run_id)
    except (OSError, RuntimeError, AttributeError) as err:
        log.warning("Could not read the W&B run id from %s: %s", ckpt_path, err)
    id_file = ckpt_path.parent.parent / "wandb" / RUN_ID_FILE
    return id_file.read_text().strip() or None if id_file.is_file() else None


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` with bigmodel's defaults (see the module docstring).

    Args:
        save_dir: the run's output directory; W&B files go to ``<save_dir>/wandb/``.
        experiment: the experiment name (``${task_name}``), the default group and name prefix.
        project, entity, name, group, tags, job_type, notes: as in ``wandb.init``; ``None`` picks the defaults.
        offline: record offline even when W&B is reachable.
        log_model: ``False``, ``True`` (checkpoints at the end) or ``"all"`` (each checkpoint when saved).
        resume: ``allow`` (continue the checkpoint's run when resuming), ``never`` (always a new run),
            ``must`` (fail unless the checkpoint names a run).
        id: a fixed run id (overrides the one from a checkpoint).
        watch: ``{log: gradients|parameters|all|null, log_freq: steps}`` for ``wandb.watch``; ``log: null`` is off.
        connect_timeout_s: how long the reachability check may take, in seconds.
        init_timeout_s: ``wandb.init``'s own timeout, in seconds.

    Raises:
        ConfigError: an unknown ``resume``, ``log_model`` or ``watch.log`` value, or a non-positive timeout.
    """

    def __init__(
        self,
        save_dir: str | Path,
        experiment: str = "bigmodel",
        project: str = "bigmodel",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        job_type: str = "train",
        notes: str | None = None,
        offline: bool = False,
        log_model: bool | Literal["all"] = False,
        resume: str = "allow",
        id: str | None = None,
        watch: dict[str, Any] | None = None,
        connect_timeout_s: float = 2.0,
        init_timeout_s: float = 60.0,
        prefix: str = "",
        checkpoint_name: str | None = None,
    ) -> None:
        if resume not in RESUME_CHOICES:
            raise ConfigError(f"logger.wandb.resume={resume!r}: use one of {', '.join(RESUME_CHOICES)}.")
        if log_model not in (True, False, "all"):
            raise ConfigError(f"logger.wandb.log_model={log_model!r}: use true, false or all.")
        watch = dict(watch or {})
        if watch.get("log") not in (None, *WATCH_CHOICES):
            raise ConfigError(
                f"logger.wandb.watch.log={watch.get('log')!r}: use one of {', '.join(WATCH_CHOICES)} or null."
            )
        if connect_timeout_s <= 0 or init_timeout_s <= 0:
            raise ConfigError("logger.wandb.connect_timeout_s and init_timeout_s must be > 0 seconds.")
        multirun, sweep, job_num = _hydra_context()
        if group is None:
            group = f"{experiment}-{sweep}" if multirun else experiment
        if name is None:
            name = f"{experiment}-{sweep}-{job_num}" if multirun else f"{experiment}-{Path(save_dir).name}"
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            name=name,
            save_dir=str(save_dir),
            # Lightning's offline=True refuses log_model and sets WANDB_MODE for the whole process; the mode
            # is passed to wandb.init instead (see `experiment`).
            offline=False,
            id=id,
            project=project,
            # under WANDB_MODE=disabled there is no run to upload checkpoints to
            log_model=False if _env_mode() == "disabled" else log_model,
            prefix=prefix,
            checkpoint_name=checkpoint_name,
            entity=entity,
            group=group,
            tags=list(tags or []),
            job_type=job_type,
            notes=notes,
            resume="never" if resume == "never" else "allow",
        )
        # Lightning always passes anonymous=None, which wandb (deprecated setting) warns about
        _wandb_init_kwargs(self).pop("anonymous", None)
        self._fixed_id = id
        self._resume_policy = resume
        self._want_offline = offline
        self._watch = watch
        self._connect_timeout_s = connect_timeout_s
        self._init_timeout_s = init_timeout_s
        self._mode: str | None = None
        self._run: Any = None  # the run this logger created (rank 0), None before and after it

    @property
    def mode(self) -> str | None:
        """``online``, ``offline`` or ``disabled`` once the run exists (rank 0), else ``None``."""
        return self._mode

    def resume_from_checkpoint(self, ckpt_path: str | Path | None) -> str | None:
        """Continue the W&B run recorded in ``ckpt_path`` (call before the run is created).

        Returns the run id used, or ``None`` for a new run.

        Raises:
            ConfigError: ``resume=must`` and no run id is found in the checkpoint or its run directory.
        """
        if self._resume_policy == "never" or self._fixed_id:
            return self._fixed_id
        run_id = run_id_from_checkpoint(ckpt_path) if ckpt_path else None
        if run_id is None and self._resume_policy == "must":
            raise ConfigError(
                f"logger.wandb.resume=must, but no W&B run id was found in ckpt_path={ckpt_path} or its run "
                "directory. Pass logger.wandb.id=<run id>, or use logger.wandb.resume=allow."
            )
        if run_id:
            _wandb_init_kwargs(self)["id"] = run_id
            log.info("W&B: resuming run %s from %s", run_id, ckpt_path)
        return run_id

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._run is None:
            self._run = self._start_run()
        return self._run

    def _start_run(self) -> Any:
        """Decide the mode, create the run through Lightning (which also defines its step metric), record its id
        in ``<save_dir>/wandb/run_id.txt`` and say once when it records offline."""
        import wandb

        init = _wandb_init_kwargs(self)
        mode, reason = decide_mode(self._want_offline, self._connect_timeout_s)
        self._mode = init["mode"] = mode
        # Offline, wandb's own banner would repeat what the warning below says (with the sync command).
        init["settings"] = wandb.Settings(init_timeout=self._init_timeout_s, silent=mode != "online")
        try:
            run = super().experiment
        except Exception as err:  # e.g. wandb.errors.CommError after init_timeout_s
            if mode != "online":
                raise
            reason = f"wandb.init failed online ({type(err).__name__}: {err})"
            self._mode = init["mode"] = mode = "offline"
            init["settings"] = wandb.Settings(init_timeout=self._init_timeout_s, silent=True)
            run = super().experiment  # Lightning kept no run from the failed attempt
        if mode != "disabled":
            run_dir = Path(str(self.save_dir), "wandb")
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / RUN_ID_FILE).write_text(f"{run.id}\n")
        if mode == "offline":
            why = f" because {reason}" if reason else ""
            log.warning(
                "W&B: recording offline%s. Upload later with: wandb sync %s", why, run.settings.sync_dir
            )
        return run

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the logger; Lightning drops its own run reference, and so do we
        state = super().__getstate__()
        state["_run"] = None
        return state

    def checkpoint_info(self) -> dict[str, str] | None:
        """``{"id", "project", "entity"}`` of the run, for checkpoints; ``None`` when no run exists yet (this
        never creates one), on ranks other than 0, and under ``disabled``."""
        run = self._run
        if run is None or self._mode in (None, "disabled") or not getattr(run, "id", None):
            return None
        return {"id": str(run.id), "project": str(run.project or ""), "entity": str(run.entity or "")}

    def watch_model(self, model: Any) -> None:
        """``wandb.watch`` the model when ``watch.log`` is set (rank 0 only)."""
        if self._watch.get("log"):
            self.watch(
                model,
                log=self._watch["log"],
                log_freq=int(self._watch.get("log_freq", 100)),
                log_graph=bool(self._watch.get("log_graph", False)),
            )

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (rank 0), so that the next job in this process starts a new one."""
        run, self._run = self._run, None
        if run is None:
            return
        if self._mode == "offline":
            log.info("W&B offline run: upload with `wandb sync %s`", run.settings.sync_dir)
        run.finish(exit_code=exit_code)
