"""Find training runs on disk and read what ``bigmodel.compare`` reports about them.

A run folder is one that Hydra wrote for ``bigmodel.train``: ``.hydra/config.yaml`` (the resolved config),
``metrics.json`` (final metrics, absent when the run crashed or was killed), ``csv/metrics.csv`` (the
learning curves) and ``csv/hparams.yaml`` (``run.params`` counts). Every field is optional: a missing one is
``None`` and shows as "—" in the report, never an error.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

# Hydra jobs that are not training runs: their folders hold no learning curves to compare.
NOT_TRAINING = {
    "compare",
    "explain",
    "eval",
    "predict",
    "export",
    "serve",
    "compress",
    "generate",
    "estimate",
}


@dataclass
class Run:
    """What one run folder says; ``metrics`` is ``metrics.json`` as written (empty when missing)."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    status: str  # completed | interrupted | failed | incomplete (no metrics.json)
    params: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def experiment(self) -> str:
        return str(
            self.metrics.get("experiment") or self.config.get("task_name") or self.path.parent.parent.name
        )

    @property
    def net(self) -> str | None:
        target = ((self.config.get("model") or {}).get("net") or {}).get("_target_")
        return target.rsplit(".", 1)[-1] if target else None

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in (self.config.get("tags") or [])]

    @property
    def complete(self) -> bool:
        return self.status == "completed"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        log.warning("Cannot read %s (%s); treating it as empty.", path, e)
        return {}
    return data if isinstance(data, dict) else {}


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        log.warning("Cannot read %s (%s); listing the run as incomplete.", path, e)
        return None
    return data if isinstance(data, dict) else None


def read_run(path: str | Path) -> Run:
    """Read one run folder (see the module docstring); never raises for missing or broken files."""
    path = Path(path)
    config = _read_yaml(path / ".hydra" / "config.yaml")
    metrics = _read_json(path / "metrics.json")
    status = "incomplete" if metrics is None else str(metrics.get("status") or "completed")
    hparams = _read_yaml(path / "csv" / "hparams.yaml") if (path / "csv" / "hparams.yaml").is_file() else {}
    params = ((hparams.get("run") or {}).get("params") or {}).get("total")
    return Run(path, config, metrics or {}, status, int(params) if params else None)


def find_runs(patterns: str | list[str]) -> list[Path]:
    """Run folders (those with ``.hydra/config.yaml``) matched by the glob(s) ``patterns``, sorted by path,
    leaving out the folders of non-training jobs (compare, explain, eval, ...)."""
    found: set[Path] = set()
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        base, rel = _split_glob(str(pattern))
        found.update(base.glob(rel) if rel else [base])
    out = []
    for p in sorted(found):
        if not (p / ".hydra" / "config.yaml").is_file():
            continue
        job = (_read_yaml(p / ".hydra" / "hydra.yaml").get("hydra") or {}).get("job", {}).get("name")
        if job in NOT_TRAINING:
            continue
        out.append(p)
    return out


def _split_glob(pattern: str) -> tuple[Path, str]:
    """``/a/b/*/runs/*`` -> (``/a/b``, ``*/runs/*``): ``Path.glob`` wants a relative pattern."""
    parts = Path(pattern).expanduser().parts
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return Path(*parts[:i]) if i else Path("."), str(Path(*parts[i:]))
    return Path(pattern).expanduser(), ""


def select_runs(
    pattern: str | list[str], experiment: str | list[str] | None, tags: list[str] | None
) -> list[Run]:
    """The runs matched by ``pattern`` whose experiment matches ``experiment`` (a name, an fnmatch glob or a
    list of them) and that carry every tag in ``tags``.

    Raises:
        ConfigError: nothing matched, naming the glob and the filter that left nothing.
    """
    paths = find_runs(pattern)
    pattern = pattern if isinstance(pattern, str) else ",".join(map(str, pattern))
    if not paths:
        raise ConfigError(
            f"compare: runs={pattern} matched no run folder (a folder with .hydra/config.yaml). Train something "
            "first (`make train`), or point runs= at run folders, e.g. runs='logs/*/runs/*'."
        )
    runs = [read_run(p) for p in paths]
    if experiment:
        wanted = [experiment] if isinstance(experiment, str) else [str(e) for e in experiment]
        kept = [r for r in runs if any(fnmatch.fnmatch(r.experiment, w) for w in wanted)]
        if not kept:
            found = sorted({r.experiment for r in runs})
            raise ConfigError(
                f"compare: experiment={','.join(wanted)} matched none of the {len(runs)} runs under runs={pattern} "
                f"(their experiments: {', '.join(found)})."
            )
        runs = kept
    if tags:
        kept = [r for r in runs if set(map(str, tags)) <= set(r.tags)]
        if not kept:
            found = sorted({t for r in runs for t in r.tags})
            raise ConfigError(
                f"compare: tags={list(tags)} matched none of the {len(runs)} runs under runs={pattern}"
                f"{' with experiment=' + str(experiment) if experiment else ''} (their tags: {', '.join(found)})."
            )
        runs = kept
    return runs


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, a string, NaN)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
