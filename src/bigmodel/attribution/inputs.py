"""The input side of ``bigmodel.explain``: load a checkpoint and turn ``inputs=`` / ``text=`` into
preprocessed tensors. Everything else in :mod:`bigmodel.attribution` takes what this returns.

The model and its eval preprocessing come from the shared inference loader
(:func:`bigmodel.inference.loader.load_model`, the one ``predict``/``serve``/``export`` use): files and
texts go through the same :class:`~bigmodel.inference.preprocess.Preprocessor` (decode, eval transform,
clip length, tokenizer from the checkpoint) and its adapter (normalisation). Only ``inputs=test:N`` /
``val:N`` builds the run's DataModule (from the run config stored in the checkpoint), to read that split.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning import LightningDataModule
from omegaconf import OmegaConf

from bigmodel.inference import inputs as input_items
from bigmodel.inference.loader import LoadedModel, load_model
from bigmodel.inference.preprocess import InputError
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import entry_ckpt_path

log = logging.getLogger(__name__)

WHAT = {
    "image": "image files (.png, .jpg, ...)",
    "audio": "audio files (.wav, .flac, ...)",
    "text": "text= or .txt files",
}


@dataclass
class Loaded:
    """A model ready for attribution: ``model`` (the shared loader's :class:`LoadedModel`: module in eval
    mode on the CPU, preprocessing, class names), and where the run's data lie (``data_dir``,
    ``cache_dir``) for ``test:N``/``val:N`` inputs."""

    model: LoadedModel
    data_dir: str
    cache_dir: str

    @property
    def module(self) -> Any:
        return self.model.module

    @property
    def modality(self) -> str:
        return self.model.kind

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.model.class_names or []]

    @property
    def ckpt_path(self) -> str:
        return self.model.ckpt_path

    @property
    def experiment(self) -> str:
        return self.model.experiment or ""

    @functools.cached_property
    def datamodule(self) -> LightningDataModule:
        """The run's DataModule (not set up), its state (tokenizer) restored from the checkpoint. The
        stored data config is unresolved (``${paths.data_dir}``, ``${seed}``): it is resolved against the
        training run's data directory when it exists here, else ``data_dir``."""
        from bigmodel.utils.run import load_checkpoint

        run_cfg = self.model.run_config
        train_dir = run_cfg.get("data_dir")
        paths = {
            "data_dir": train_dir if train_dir and Path(train_dir).is_dir() else self.data_dir,
            "cache_dir": self.cache_dir,
        }
        cfg = OmegaConf.create({"paths": paths, "seed": run_cfg.get("seed", 0), "data": run_cfg["data"]})
        dm = hydra.utils.instantiate(cfg.data)
        state = load_checkpoint(self.ckpt_path, mmap=True).get(type(dm).__qualname__)
        if state:  # Lightning stores the DataModule's state under its class name
            dm.load_state_dict(state)
        return dm

    def batch(self, raw: Any) -> torch.Tensor:
        """A batch of one raw sample, as ``module(x)`` takes it (through the preprocessor's adapter)."""
        with torch.no_grad():
            return self.model.pre.adapter(self.model.pre.collate([raw]))


@dataclass
class Sample:
    """One preprocessed input: ``x`` with a batch dimension of 1, exactly what ``module(x)`` takes
    (images ``(1, C, H, W)`` normalised, audio ``(1, T)`` waveforms, text ``(1, T)`` token ids), its
    display ``name``, the true ``label`` when known, and the ``text`` for text inputs."""

    name: str
    x: torch.Tensor
    label: int | None = None
    text: str | None = None


def modality_of(datamodule: LightningDataModule) -> str:
    """``image``, ``audio`` or ``text`` for a bigmodel DataModule.

    Raises:
        ConfigError: a DataModule of another kind (e.g. a language model's).
    """
    from bigmodel.data.audio import AudioDataModule
    from bigmodel.data.digits import DigitsDataModule
    from bigmodel.data.text_classification import TextClassificationDataModule
    from bigmodel.data.vision import VisionDataModule

    if isinstance(datamodule, VisionDataModule | DigitsDataModule):
        return "image"
    if isinstance(datamodule, AudioDataModule):
        return "audio"
    if isinstance(datamodule, TextClassificationDataModule):
        return "text"
    raise ConfigError(
        f"explain works on classifiers of images, audio or text; this checkpoint's data is {type(datamodule).__name__}."
    )


def load(ckpt_path: str, log_dir: str, experiment_name: str | None, data_dir: str, cache_dir: str) -> Loaded:
    """Resolve ``ckpt_path`` (a file, or ``last``/``best`` with ``experiment_name``) and rebuild model +
    preprocessing with the shared inference loader. The data are read (only for ``inputs=test:N``) from
    the training run's data directory when it exists here, else from ``data_dir``.

    Raises:
        ConfigError: a missing checkpoint, one not written by ``bigmodel.train``, or not a classifier.
    """
    path = entry_ckpt_path(ckpt_path, log_dir, experiment_name, "explain")
    model = load_model(path, kinds=("image", "audio", "text"), entry="explain")
    return Loaded(model, data_dir, cache_dir)


def read_inputs(loaded: Loaded, inputs: str | None, text: Any = None, limit: int = 64) -> list[Sample]:
    """Preprocessed samples for ``inputs`` (``test:N`` / ``val:N`` = the first N of that split; a file, a
    folder or a glob) and ``text`` (a string or a list of strings, text models only).

    Raises:
        ConfigError: nothing given, nothing matched, or inputs of another modality than the checkpoint's.
    """
    samples: list[Sample] = []
    texts = [text] if isinstance(text, str) else list(text or [])
    if texts:
        if loaded.modality != "text":
            raise ConfigError(
                f"text= was given, but {loaded.ckpt_path} is a {loaded.modality} model ({loaded.experiment}); "
                f"pass {WHAT[loaded.modality]} with inputs=..."
            )
        samples += [_text_sample(loaded, t, f"text_{i}") for i, t in enumerate(texts)]
    if inputs:
        split, _, n = str(inputs).partition(":")
        if split in ("test", "val") and (not n or n.isdigit()):
            samples += split_samples(loaded, split, int(n or 8))
        else:
            samples += _file_samples(loaded, str(inputs))
    if not samples:
        raise ConfigError(
            "explain needs inputs: inputs=test:8 (the first 8 test samples), inputs=<file|folder|glob>, "
            "or text='a sentence' for a text model."
        )
    return samples[:limit]


def _file_samples(loaded: Loaded, spec: str) -> list[Sample]:
    """The samples of ``inputs=<file|folder|glob>``, collected and decoded as ``predict`` does (a .txt
    file gives one sample per line).

    Raises:
        ConfigError: nothing matched, or a file of another modality than the checkpoint's (naming both).
    """
    pre, describe = loaded.model.pre, loaded.model.describe()
    samples = []
    for name, source, is_text in input_items.collect(spec, None, pre, describe):
        try:
            raw = input_items.load_item((name, source, is_text), pre)
        except InputError as e:
            raise ConfigError(f"inputs: {e}; pass {WHAT[loaded.modality]}.") from None
        text = source if is_text else None
        samples.append(Sample(Path(name).name, loaded.batch(raw), None, text))
    return samples


def _text_sample(loaded: Loaded, text: str, name: str) -> Sample:
    try:
        return Sample(name, loaded.batch(loaded.model.pre.load_text(text)), None, text)
    except InputError as e:
        raise ConfigError(f"text: {e}") from None


def split_samples(loaded: Loaded, split: str, n: int) -> list[Sample]:
    """The first ``n`` samples of the run's ``split`` (``test`` or ``val``), preprocessed as in evaluation."""
    dm = loaded.datamodule
    state = {k: v for k, v in (dm.state_dict() or {}).items()}
    dm.setup("test" if split == "test" else "validate")
    if state:  # setup rebuilt the tokenizer from the training texts: keep the checkpoint's
        dm.load_state_dict(state)
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    out: list[Sample] = []
    for batch in loader:
        batch = dm.on_after_batch_transfer(batch, 0)
        x, y = batch[0], batch[1]
        for i in range(len(y)):
            text = getattr(getattr(loader, "dataset", None), "texts", None)
            out.append(
                Sample(f"{split}_{len(out):04d}", x[i : i + 1], int(y[i]), text[len(out)] if text else None)
            )
            if len(out) >= n:
                return out
    return out
