"""Config printing and saving, and instantiation of config groups that hold several objects."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

log = logging.getLogger(__name__)

PRINT_ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths", "extras")


def print_config_tree(
    cfg: DictConfig, save_dir: str | Path | None = None, resolve: bool = True, show: bool = True
) -> None:
    """Print the composed config as a rich tree (main groups first) when ``show``, and save it as
    ``<save_dir>/config_tree.log``."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in PRINT_ORDER if k in cfg] + [k for k in cfg if k not in PRINT_ORDER]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=resolve) if isinstance(node, DictConfig) else str(node)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    if show:
        rich.print(tree)
    if save_dir is not None:
        with open(Path(save_dir) / "config_tree.log", "w") as f:
            Console(file=f, width=120).print(tree)


def instantiate_group(cfg: DictConfig | None, what: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a group like ``callbacks`` or ``logger``.

    An entry without ``_target_`` is skipped with a warning: that is what is left when an experiment tunes a
    callback (``callbacks.early_stopping.patience``) and a preset such as ``debug=fdr`` or ``callbacks=none``
    removed the callback itself.

    Raises:
        TypeError: an entry that is neither a config nor null.
    """
    out: list[Any] = []
    if not cfg:
        return out
    for name, conf in cfg.items():
        if conf is None:
            continue
        if not isinstance(conf, DictConfig):
            raise TypeError(f"{what}.{name} must be a config with a _target_, got {conf!r}.")
        if "_target_" not in conf:
            log.warning(
                "Skipping %s.%s: it has settings %s but no _target_ (the %s preset in use does not "
                "include it).",
                what,
                name,
                dict(conf),
                what,
            )
            continue
        log.info("Instantiating %s.%s <%s>", what, name, conf._target_)
        out.append(hydra.utils.instantiate(conf))
    return out


def to_plain(cfg: Any) -> Any:
    """A DictConfig/ListConfig as plain dicts/lists (resolved), so checkpoints hold no OmegaConf classes
    and load with ``torch.load(weights_only=True)``; anything else is returned as it is."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_list(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def subset(cfg: DictConfig, keys: Sequence[str]) -> dict[str, Any]:
    """The given top-level keys of ``cfg`` as an unresolved plain dict."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=False) if isinstance(cfg[k], DictConfig) else cfg[k]
        for k in keys
        if k in cfg
    }


def compose_run_config(
    config_name: str, overrides: Sequence[str], output_dir: str | Path, work_dir: str | Path
) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` outside ``@hydra.main`` (tests, benchmarks) the way the entry
    point would, with the run's own directory ``output_dir`` and ``logs/`` + ``cache/`` under ``work_dir``,
    and register it as the current Hydra config (``${hydra:...}`` interpolations resolve)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from bigmodel.utils.resolvers import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.log_dir = str(Path(work_dir) / "logs")
        cfg.paths.cache_dir = str(Path(work_dir) / "cache")
    HydraConfig.instance().set_config(cfg)
    return cfg
