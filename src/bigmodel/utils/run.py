"""Run-level glue: checkpoint paths, metrics.json, seeding.

torch and Lightning are imported inside the functions that need them: an entry point resolves
``ckpt_path`` (and fails on a missing file) before it pays their import (several seconds of CPU)."""

from __future__ import annotations

import json
import logging
import math
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, log_dir: str | Path, task_name: str) -> str | None:
    """Resolve ``ckpt_path`` the same way for every entry point (train, eval, generate, ...):

    - ``None``/``""``/``null`` stays ``None``;
    - ``last``: the newest readable ``<log_dir>/<task_name>/runs/*/checkpoints/last.ckpt``; when it is
      empty, truncated or corrupt, that run's newest readable step/epoch checkpoint (with a warning
      naming both); runs without any (a ``kill -9`` before the first save) are skipped;
    - ``best``: the best checkpoint of the newest run that names a readable one (its ``metrics.json``
      ``best_ckpt_path``, else the ModelCheckpoint state stored in its ``last.ckpt``);
    - anything else must be an existing, readable checkpoint file (or sharded checkpoint folder).

    ``last`` and ``best`` log one line naming the run and the checkpoint picked.

    Raises:
        ConfigError: the file does not exist or is not a readable checkpoint, ``last``/``best`` without
            ``task_name``, or no run of this experiment has such a checkpoint.
    """
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path in ("last", "best"):
        if not task_name:
            raise ConfigError(
                f"ckpt_path={ckpt_path} needs the experiment whose checkpoint to use: add experiment_name=NAME "
                "(e.g. experiment_name=digits_cnn), or pass ckpt_path=<file.ckpt>."
            )
        return str(_resolve_from_runs(ckpt_path, Path(log_dir), task_name))
    path = Path(ckpt_path).expanduser()
    if not _is_checkpoint(path):
        raise ConfigError(
            f"Checkpoint not found: ckpt_path={ckpt_path} (looked at {path.resolve()}). Pass an existing .ckpt "
            "file (run outputs keep them in logs/<experiment>/runs/<run>/checkpoints/), or ckpt_path=last."
        )
    if not is_readable_checkpoint(path):
        raise ConfigError(
            _unreadable_message(path.resolve(), "it is empty or truncated (no zip central directory)")
        )
    return str(path.resolve())


def entry_ckpt_path(
    ckpt_path: str | None, log_dir: str | Path, experiment_name: str | None, entry: str
) -> str:
    """The checkpoint file for ``ckpt_path=<file>|last|best``.

    Raises:
        ConfigError: no ``ckpt_path``, a missing file, or ``last``/``best`` without a matching run.
    """
    if ckpt_path in (None, "", "???", "null"):
        raise ConfigError(
            f"bigmodel.{entry} needs a checkpoint: pass ckpt_path=<file.ckpt> "
            "(or ckpt_path=last or ckpt_path=best, with experiment_name=NAME)."
        )
    return resolve_ckpt_path(str(ckpt_path), log_dir, experiment_name or "")


def _resolve_from_runs(kind: str, log_dir: Path, task_name: str) -> Path:
    runs_dir = log_dir / task_name / "runs"
    runs = [d for d in runs_dir.glob("*") if d.is_dir()] if runs_dir.is_dir() else []
    current = _current_run_dir()
    runs = [d for d in runs if d.resolve() != current]  # this run's own, new directory is no candidate

    def newest_first(run: Path) -> float:
        last = run / "checkpoints" / "last.ckpt"
        return (last if last.exists() else run).stat().st_mtime

    skipped: list[str] = []
    for run in sorted(runs, key=newest_first, reverse=True):
        found = _run_last(run) if kind == "last" else _run_best(run)
        if found is None:
            skipped.append(run.name)
            continue
        note = f"; skipped newer runs without a readable checkpoint: {', '.join(skipped)}" if skipped else ""
        log.info("ckpt_path=%s: run %s, checkpoint %s%s", kind, run.name, found, note)
        return found
    what = "a last.ckpt that can be read" if kind == "last" else "a best checkpoint that can be read"
    raise ConfigError(
        f"ckpt_path={kind}: no earlier run of experiment {task_name!r} has {what} (looked in "
        f"{runs_dir}/*/checkpoints/{' and metrics.json' if kind == 'best' else ''}"
        f"{'; runs without one: ' + ', '.join(skipped) if skipped else ''}). Train it first "
        f"(`make train experiment={task_name}`), or pass ckpt_path=<file>."
    )


def _current_run_dir() -> Path | None:
    """The output directory Hydra made for the running job (``None`` outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return Path(HydraConfig.get().runtime.output_dir).resolve()


def _run_last(run: Path) -> Path | None:
    from bigmodel.utils.resume import newest_readable_checkpoint  # a damaged last.ckpt falls back

    return newest_readable_checkpoint(run)


def _run_best(run: Path) -> Path | None:
    """The run's best checkpoint: ``metrics.json`` (a finished run), else the ModelCheckpoint state in its
    ``last.ckpt`` (an interrupted one). After a resume it may lie in the earlier run's directory."""
    candidates: list[str] = []
    metrics = run / "metrics.json"
    if metrics.is_file():
        try:
            candidates.append(json.loads(metrics.read_text()).get("best_ckpt_path") or "")
        except (ValueError, OSError):
            pass
    last = _run_last(run)
    if last is not None:
        try:
            states = load_checkpoint(last, mmap=True).get("callbacks") or {}
        except ConfigError:
            states = {}
        candidates += [
            s.get("best_model_path") or "" for k, s in states.items() if k.startswith("ModelCheckpoint")
        ]
    for c in candidates:
        if c and is_readable_checkpoint(Path(c)):
            return Path(c)
    return None


def is_readable_checkpoint(path: str | Path) -> bool:
    """A checkpoint that ``torch.load`` can open: a non-empty zip file (torch's format), or a sharded folder
    whose ``meta.pt`` is one. A zero-byte or truncated file (a copy or save that did not finish) is not."""
    path = Path(path)
    if path.is_dir():
        path = path / SHARDED_METADATA
    return path.is_file() and path.stat().st_size > 0 and zipfile.is_zipfile(path)


def _unreadable_message(path: Path, why: str) -> str:
    return (
        f"Cannot read checkpoint {path}: {why}. It was probably copied, downloaded or written only in part. "
        "Pass another checkpoint (ckpt_path=last skips unreadable ones), or copy the file again."
    )


def _is_checkpoint(path: Path) -> bool:
    """A checkpoint file, or a sharded (FSDP ``state_dict_type=sharded``) checkpoint folder."""
    return path.is_file() or (path / SHARDED_METADATA).is_file()


# Lightning's FSDP writes a sharded checkpoint as a folder of shards plus this file with everything else
# (hyper-parameters, our "bigmodel" config, loop state).
SHARDED_METADATA = "meta.pt"


def check_resume_compatible(ckpt_path: str | Path, cfg: Any) -> None:
    """Fail with a clear message, before anything is built, when the checkpoint's net is another class than
    the configured one (e.g. ``ckpt_path=last`` picked a run trained with ``net=big_mlp``), or was written
    by another experiment (``task_name``). Sharded (folder) checkpoints are not checked.

    Raises:
        ConfigError: naming both nets (or both experiments) and the fix; a checkpoint already past
            ``trainer.max_epochs``; an unreadable file, naming it.
    """
    if not Path(ckpt_path).is_file():
        return
    ckpt = load_checkpoint(ckpt_path, mmap=True)
    ckpt_task = ((ckpt.get("bigmodel") or {}).get("config") or {}).get("task_name")
    old = (ckpt.get("hyper_parameters") or {}).get("net") or {}
    new = cfg.model.get("net") if "model" in cfg else None
    old_t, new_t = old.get("_target_"), (new or {}).get("_target_")
    if old_t and new_t and old_t != new_t:
        # name the checkpoint's own experiment: resuming without experiment= composes the default one
        hint = (
            f"It was written by experiment {ckpt_task!r} (this config is {cfg.get('task_name')!r}): add "
            f"experiment={ckpt_task} and the same net/model overrides as that run"
            if ckpt_task and ckpt_task != cfg.get("task_name")
            else "Pass the same net/model overrides as the run that wrote it"
        )
        raise ConfigError(
            f"Cannot resume from {ckpt_path}: it was trained with net {old_t}, but this config builds {new_t}. "
            f"{hint} (see its .hydra/overrides.yaml), or pass ckpt_path=<file> of a matching run."
        )
    # Lightning refuses this itself, but deep inside fit with a traceback (MisconfigurationException)
    max_epochs = (cfg.get("trainer") or {}).get("max_epochs")
    ckpt_epoch = ckpt.get("epoch")
    if (
        isinstance(ckpt_epoch, int)
        and isinstance(max_epochs, int)
        and max_epochs != -1
        and ckpt_epoch > max_epochs
    ):
        raise ConfigError(
            f"Cannot resume from {ckpt_path}: it is at epoch {ckpt_epoch}, past trainer.max_epochs={max_epochs}. "
            f"Set trainer.max_epochs above {ckpt_epoch} to train on, or test it with train=false ckpt_path=... ."
        )
    if ckpt_task and cfg.get("task_name") and ckpt_task != cfg.get("task_name"):
        raise ConfigError(
            f"Cannot resume from {ckpt_path}: it was written by experiment {ckpt_task!r}, but this config is "
            f"experiment {cfg.get('task_name')!r} (same net {new_t or old_t or '?'}). Resuming continues that "
            f"run's optimizer, schedule and data position: add experiment={ckpt_task} and the same overrides "
            "(its .hydra/overrides.yaml), or pass ckpt_path=<file> of a run of this experiment."
        )


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``: our checkpoints hold only tensors and plain data.
    For a sharded checkpoint folder, the non-tensor part (``meta.pt``) without the weight shards.
    The one place checkpoints are read, so every failure names the file.

    Raises:
        ConfigError: the file is missing, truncated or not a checkpoint, or holds pickled objects that
            ``weights_only`` loading refuses; the message names the file and the fix.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / SHARDED_METADATA
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as e:
            if "torchao" not in str(e):
                raise
            # a `compress method=int8_weight_only` checkpoint: torchao's tensor subclasses are allowed for
            # weights_only loading once torchao is imported (it registers them as safe globals)
            import torchao  # noqa: F401

            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise ConfigError(
            f"Cannot read checkpoint {path}: it holds objects that torch.load(weights_only=True) refuses ({e}). "
            "bigmodel checkpoints hold tensors and plain data only; re-save it from bigmodel.train."
        ) from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise ConfigError(_unreadable_message(path, f"{type(e).__name__}: {e}")) from e


def _plain(v: Any) -> Any:
    torch = sys.modules.get("torch")  # not imported yet (an early failure): then no value is a tensor
    if torch is not None and isinstance(v, torch.Tensor):
        v = v.item() if v.numel() == 1 else v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json``: one flat JSON object (rank 0 only), atomically. ``status`` is
    ``completed`` unless ``metrics`` says otherwise (``failed`` with ``error_type`` and ``error``, see
    CONVENTIONS.md "Run status and exit codes"; a trial an Optuna sweep pruned stays ``completed``, with
    ``pruned`` saying why)."""
    from lightning.pytorch.utilities import rank_zero_only

    rank_zero_only(write_metrics_file)(path, metrics)


def write_metrics_file(path: str | Path, metrics: dict[str, Any]) -> None:
    """:func:`write_metrics` without its rank check, for a caller that made it (an entry point's failure
    path, which may run before Lightning is imported)."""
    metrics = {"status": "completed", **metrics}
    with atomic_write(path, "w") as f:
        f.write(json.dumps({k: _plain(v) for k, v in sorted(metrics.items())}, indent=2) + "\n")


def checkpointing_kwargs(cfg: Any, callbacks: list[Any]) -> dict[str, Any]:
    """Trainer kwargs so that checkpoints are written only where ``callbacks.model_checkpoint`` says: with no
    ModelCheckpoint configured (``callbacks=none``), Lightning would add its own default one writing into
    the logger's folder (``tensorboard/checkpoints/epoch=1-step=40.ckpt``); turn it off instead, unless
    ``trainer.enable_checkpointing`` is set explicitly."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    if "enable_checkpointing" in cfg.trainer or any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        return {}
    log.info(
        "No callbacks.model_checkpoint configured: no checkpoint is written (trainer.enable_checkpointing=false)."
    )
    return {"enable_checkpointing": False}


def record_effective_precision(cfg: Any, trainer: Any, output_dir: str | Path) -> str:
    """Make the saved config and the logged hyper-parameters say the precision the trainer really runs
    in: Lightning turns ``16-mixed`` on CPU into ``bf16-mixed`` (fp16 autocast does not exist there).
    Updates ``cfg.trainer.precision`` and ``<output_dir>/.hydra/config.yaml`` (rank 0) with a warning;
    returns the effective precision (also written to metrics.json as ``precision``)."""
    from omegaconf import OmegaConf, open_dict

    effective = str(trainer.precision)
    asked = str(cfg.trainer.get("precision"))
    if asked == effective:
        return effective
    log.warning(
        "trainer.precision=%s runs as %s on this %s; the saved config and hyper-parameters record %s.",
        asked,
        effective,
        type(trainer.accelerator).__name__,
        effective,
    )
    with open_dict(cfg):
        cfg.trainer.precision = effective
    saved = Path(output_dir) / ".hydra" / "config.yaml"
    if saved.is_file() and trainer.is_global_zero:
        conf = OmegaConf.load(saved)
        conf.trainer.precision = effective
        with atomic_write(saved, "w") as f:
            f.write(OmegaConf.to_yaml(conf))
    return effective


def checkpoint_to_test(cfg: Any, trainer: Any, resume_ckpt: str | None) -> str | None:
    """The checkpoint ``trainer.test`` uses: the best one when this run trained; the given ``ckpt_path``
    when training is off (``train=false ckpt_path=FILE`` tests that file, not untrained weights); else
    ``None`` (the current weights, with a warning)."""
    if cfg.get("train", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            return best
        log.warning("No best checkpoint was saved; testing the current weights.")
        return None
    if resume_ckpt:
        log.info("train=false: testing %s", resume_ckpt)
        return resume_ckpt
    log.warning("train=false and no ckpt_path: testing the untrained weights of a fresh model.")
    return None
