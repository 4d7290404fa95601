"""Run-level glue: checkpoint paths, metrics.json, seeding."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_only

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, log_dir: str | Path, task_name: str) -> str | None:
    """Resolve ``ckpt_path``: ``None`` stays ``None``; ``last`` becomes the newest
    ``<log_dir>/<task_name>/runs/*/checkpoints/last.ckpt``; anything else must be an existing file.

    Raises:
        ConfigError: the file does not exist, or ``last`` finds no earlier run of this experiment.
    """
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == "last":
        if not task_name:
            raise ConfigError(
                "ckpt_path=last needs the experiment whose newest last.ckpt to use: add experiment_name=NAME "
                "(e.g. experiment_name=digits_cnn), or pass ckpt_path=<file.ckpt>."
            )
        pattern = Path(log_dir) / task_name / "runs" / "*" / "checkpoints" / "last.ckpt"
        found = sorted(
            (p for p in Path(log_dir).glob(str(pattern.relative_to(log_dir))) if _is_checkpoint(p)),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            raise ConfigError(
                f"ckpt_path=last: no earlier run of experiment {task_name!r} has a last.ckpt (looked for "
                f"{pattern}). Train it first (`make train experiment={task_name}`), or pass ckpt_path=<file>."
            )
        log.info("ckpt_path=last resolved to %s", found[-1])
        return str(found[-1])
    path = Path(ckpt_path).expanduser()
    if not _is_checkpoint(path):
        raise ConfigError(
            f"Checkpoint not found: ckpt_path={ckpt_path} (looked at {path.resolve()}). Pass an existing .ckpt "
            "file (run outputs keep them in logs/<experiment>/runs/<run>/checkpoints/), or ckpt_path=last."
        )
    return str(path.resolve())


def _is_checkpoint(path: Path) -> bool:
    """A checkpoint file, or a sharded (FSDP ``state_dict_type=sharded``) checkpoint folder."""
    return path.is_file() or (path / SHARDED_METADATA).is_file()


# Lightning's FSDP writes a sharded checkpoint as a folder of shards plus this file with everything else
# (hyper-parameters, our "bigmodel" config, loop state).
SHARDED_METADATA = "meta.pt"


def check_resume_compatible(ckpt_path: str | Path, cfg: Any) -> None:
    """Fail with a clear message, before anything is built, when the checkpoint's net is another class than
    the configured one (e.g. ``ckpt_path=last`` picked a run trained with ``net=big_mlp``). Sharded
    (folder) checkpoints are not checked.

    Raises:
        ConfigError: naming both nets and the fix.
    """
    if not Path(ckpt_path).is_file():
        return
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    old = (ckpt.get("hyper_parameters") or {}).get("net") or {}
    new = cfg.model.get("net") if "model" in cfg else None
    old_t, new_t = old.get("_target_"), (new or {}).get("_target_")
    if old_t and new_t and old_t != new_t:
        # name the checkpoint's own experiment: resuming without experiment= composes the default one
        ckpt_task = ((ckpt.get("bigmodel") or {}).get("config") or {}).get("task_name")
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``: our checkpoints hold only tensors and plain data.
    For a sharded checkpoint folder, the non-tensor part (``meta.pt``) without the weight shards."""
    path = Path(path)
    if path.is_dir():
        path = path / SHARDED_METADATA
    return torch.load(path, map_location="cpu", weights_only=True)


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.item() if v.numel() == 1 else v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


@rank_zero_only
def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json``: one flat JSON object (rank 0 only), atomically. ``status`` is
    ``completed`` unless ``metrics`` says otherwise (``failed`` with ``error_type`` and ``error``, see
    CONVENTIONS.md "Run status and exit codes")."""
    path = Path(path)
    metrics = {"status": "completed", **metrics}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: _plain(v) for k, v in sorted(metrics.items())}, indent=2) + "\n")
    tmp.replace(path)
