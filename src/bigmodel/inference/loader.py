"""Rebuild a trained model and its preprocessing from a checkpoint alone (no data, no experiment config).

``ckpt_path=<file>|last|best`` (+ ``experiment_name``) is resolved by
:func:`bigmodel.utils.run.entry_ckpt_path`, the same resolver train and eval use, so the errors are the
same (it imports no torch: entry points call it before they build anything). The checkpoint is read with ``torch.load(weights_only=True)``; the LightningModule is rebuilt from its
stored hyper-parameters, its weights loaded, and put in ``eval()`` mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning import LightningModule
from omegaconf import OmegaConf

from bigmodel.compression.quantize import prepare_for_checkpoint
from bigmodel.inference.preprocess import Preprocessor, build_preprocessor
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready for inference.

    Attributes:
        module: the LightningModule in ``eval()`` mode, on the CPU.
        pre: the preprocessing of its inputs (``pre.kind``: ``image``, ``audio``, ``text`` or ``lm``).
        class_names: K display names (classification), or None (language model).
        ckpt_path: the resolved checkpoint file.
        experiment: the training run's ``task_name`` (e.g. ``mnist_cnn``), or None.
        run_config: the checkpoint's stored run config (``data``, ``model``, ``seed``, ``task_name``).
        compression: the ``bigmodel.compress`` spec of a compressed checkpoint (``{"method", "backend",
            ...}``), or None for a checkpoint as trained.
    """

    module: LightningModule
    pre: Preprocessor
    class_names: list[str] | None
    ckpt_path: str
    experiment: str | None
    run_config: dict[str, Any] = field(default_factory=dict)
    compression: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return self.pre.kind

    def describe(self) -> str:
        """``"an image model (mnist_cnn, <ckpt>)"``, for error messages."""
        article = "an" if self.kind[0] in "aeiou" else "a"
        name = {"lm": "language"}.get(self.kind, self.kind)
        return f"{article} {name} model ({self.experiment or 'unnamed run'}, {self.ckpt_path})"


def read_bigmodel_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (``torch.load(weights_only=True)``), checked to be one ``bigmodel.train`` wrote.

    Raises:
        ConfigError: an unreadable file (naming it), or one with no stored ``bigmodel`` run config.
    """
    path = str(path)
    try:
        ckpt = load_checkpoint(path)
    except ConfigError:
        raise  # already names the file and the fix
    except Exception as e:  # a torch.save of arbitrary objects
        raise ConfigError(f"Cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or "bigmodel" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(
            f"{path} was not written by bigmodel.train: it has no 'bigmodel' run config. Pass a checkpoint "
            "from logs/<experiment>/runs/<run>/checkpoints/."
        )
    return ckpt


def load_module(
    path: str | Path, ckpt: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> LightningModule:
    """The LightningModule of the checkpoint at ``path``, rebuilt from its stored hyper-parameters (merged
    with ``overrides``, e.g. eval's ``model.*``), its weights loaded, in ``eval()`` mode on the CPU. A
    ``bigmodel.compress`` output gets its quantization / cast re-applied first. ``ckpt``: the already
    read checkpoint (saves a second read).

    Raises:
        ConfigError: see :func:`read_bigmodel_checkpoint`; a model class that cannot be imported.
    """
    ckpt = ckpt if ckpt is not None else read_bigmodel_checkpoint(path)
    target = ckpt["bigmodel"]["config"]["model"]["_target_"]
    try:
        cls = hydra.utils.get_class(target)
    except Exception as e:
        raise ConfigError(f"{path}: cannot import its model class {target} ({e}).") from None
    hp = dict(ckpt["hyper_parameters"])
    if overrides:
        hp = OmegaConf.to_container(OmegaConf.merge(hp, overrides), resolve=True)
    if "compile" in hp:
        hp["compile"] = False  # inference (and export) runs the plain net; compile is a benchmark choice
    module = cls(**hp)
    if hasattr(module, "configure_model"):
        module.configure_model()  # the LM builds its net here
    prepare_for_checkpoint(module, ckpt)  # a `bigmodel.compress` output: re-apply its quantization / cast
    module.load_state_dict(ckpt["state_dict"])
    module.on_load_checkpoint(ckpt)  # class names / tokenizer
    return module.eval()


def load_model(path: str | Path, kinds: tuple[str, ...] | None = None, entry: str = "") -> LoadedModel:
    """Rebuild the LightningModule and its eval preprocessing from the checkpoint at ``path``.

    Args:
        kinds: the input kinds the calling entry point takes (``("lm",)`` for generate); None: any.
        entry: the entry point's name, for the error message.

    Raises:
        ConfigError: the file is not a checkpoint written by ``bigmodel.train`` (no stored run config),
            its model/data kind is not one inference supports, or not one of ``kinds``.
    """
    path = str(path)
    ckpt = read_bigmodel_checkpoint(path)
    run_cfg = ckpt["bigmodel"]["config"]
    module = load_module(path, ckpt)
    pre = build_preprocessor(run_cfg, ckpt, module)
    hp = ckpt["hyper_parameters"]
    names = getattr(module, "class_names", None)
    if pre.kind != "lm" and not names:
        names = [str(i) for i in range(int(hp.get("num_classes") or 0))]
    loaded = LoadedModel(module, pre, names, path, run_cfg.get("task_name"), run_cfg, ckpt.get("compression"))
    if kinds and pre.kind not in kinds:
        takes = " or ".join({"lm": "language"}.get(k, k) for k in kinds)
        raise ConfigError(f"bigmodel.{entry} takes {takes} models, but ckpt_path is {loaded.describe()}.")
    log.info("Loaded %s from %s", pre.kind, path)
    return loaded


def torch_threads(n: int | None) -> None:
    """Set torch's intra-op threads when ``n`` is given (servers and benchmarks pin it)."""
    if n:
        torch.set_num_threads(int(n))
