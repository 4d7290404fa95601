"""The input side of ``bigmodel.explain``: load a checkpoint and turn ``inputs=`` / ``text=`` into
preprocessed tensors. Everything else in :mod:`bigmodel.attribution` takes what this returns, so this one
file is what moves to the shared inference loader (``bigmodel.inference``, issue #12) when it lands.

The model comes from the checkpoint alone (``ClassificationModule.load_from_checkpoint``), the eval
preprocessing from the run config stored in it (``checkpoint["bigmodel"]["config"]["data"]``): the same
DataModule is built (never set up unless ``inputs=test:N``/``val:N`` asks for its split) and its eval
transform, normalisation, clip length or tokenizer (restored from the checkpoint) applied.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning import LightningDataModule
from omegaconf import OmegaConf

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import load_checkpoint, resolve_ckpt_path

log = logging.getLogger(__name__)

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}
TEXT_EXT = {".txt"}
KIND_OF_EXT = {
    **{e: "image" for e in IMAGE_EXT},
    **{e: "audio" for e in AUDIO_EXT},
    **{e: "text" for e in TEXT_EXT},
}
WHAT = {
    "image": "image files (.png, .jpg, ...)",
    "audio": "audio files (.wav, .flac, ...)",
    "text": "text= or .txt files",
}


@dataclass
class Loaded:
    """A model ready for attribution: ``module`` (eval mode, CPU), its ``modality`` (image | audio | text),
    ``class_names``, and the run's DataModule (``datamodule``) for preprocessing."""

    module: Any
    modality: str
    class_names: list[str]
    datamodule: LightningDataModule
    ckpt_path: str
    experiment: str


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
    """Resolve ``ckpt_path`` (a file, or ``last`` with ``experiment_name``) and rebuild model + preprocessing.
    The data are read from the training run's data directory when it exists here, else from ``data_dir``
    (only ``inputs=test:N`` reads them).

    Raises:
        ConfigError: a missing checkpoint, one not written by ``bigmodel.train``, or not a classifier.
    """
    from bigmodel.models.classification import ClassificationModule

    path = resolve_ckpt_path(ckpt_path, log_dir, experiment_name or "")
    if path is None:
        raise ConfigError(
            "explain needs a checkpoint: ckpt_path=<file.ckpt> (or ckpt_path=last experiment_name=NAME)."
        )
    ckpt = load_checkpoint(path)
    if "bigmodel" not in ckpt:
        raise ConfigError(f"{path} was not written by bigmodel.train: it has no 'bigmodel' config entry.")
    run_cfg = ckpt["bigmodel"]["config"]
    if not str(run_cfg["model"].get("_target_", "")).endswith("ClassificationModule"):
        raise ConfigError(
            f"{path} is not a classifier ({run_cfg['model'].get('_target_')}); explain needs one."
        )
    # the stored data config is unresolved (``${paths.data_dir}``, ``${seed}``): resolve it against these
    train_dir = run_cfg.get("data_dir")
    paths = {
        "data_dir": train_dir if train_dir and Path(train_dir).is_dir() else data_dir,
        "cache_dir": cache_dir,
    }
    cfg = OmegaConf.create({"paths": paths, "seed": run_cfg.get("seed", 0), "data": run_cfg["data"]})
    datamodule = hydra.utils.instantiate(cfg.data)
    for key, state in ckpt.items():  # Lightning stores the DataModule's state under its class name
        if key == type(datamodule).__qualname__ and state:
            datamodule.load_state_dict(state)
    module = ClassificationModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    module.eval()
    names = module.class_names or list(getattr(datamodule, "classes", None) or [])
    names = names or [str(i) for i in range(int(module.hparams.num_classes))]
    return Loaded(
        module,
        modality_of(datamodule),
        [str(n) for n in names],
        datamodule,
        path,
        run_cfg.get("task_name", ""),
    )


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
            samples += [_file_sample(loaded, p) for p in _expand(str(inputs))]
    if not samples:
        raise ConfigError(
            "explain needs inputs: inputs=test:8 (the first 8 test samples), inputs=<file|folder|glob>, "
            "or text='a sentence' for a text model."
        )
    return samples[:limit]


def _expand(spec: str) -> list[Path]:
    p = Path(spec).expanduser()
    files = (
        sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else sorted(map(Path, glob.glob(spec)))
    )
    files = [f for f in files if f.suffix.lower() in KIND_OF_EXT]
    if not files:
        raise ConfigError(f"inputs={spec} matched no image, audio or .txt file (looked at {p.resolve()}).")
    return files


def _file_sample(loaded: Loaded, path: Path) -> Sample:
    kind = KIND_OF_EXT[path.suffix.lower()]
    if kind != loaded.modality:
        raise ConfigError(
            f"inputs: {path} is a {kind} file, but {loaded.ckpt_path} is a {loaded.modality} model "
            f"({loaded.experiment}); pass {WHAT[loaded.modality]}."
        )
    dm = loaded.datamodule
    if kind == "image":
        from bigmodel.data.images import load_image

        # DigitsDataModule (8x8 grey, values in [0, 1]) keeps no in_channels/image_size attributes
        c, size = int(getattr(dm, "in_channels", 1)), int(getattr(dm, "image_size", 8))
        x = load_image(path, "RGB" if c == 3 else "L", size)
        if getattr(dm, "eval_transform", None) is not None:
            x = dm.eval_transform(x)
        if hasattr(dm, "normalize"):
            return Sample(path.name, dm.normalize(x.unsqueeze(0)))
        return Sample(path.name, x.unsqueeze(0).float() / 255)  # digits: already in [0, 1]
    if kind == "audio":
        from bigmodel.data.audio_io import decode_audio, fit_clip, seconds_to_samples

        sr = int(dm.sample_rate_hz)
        wave = decode_audio(path, sr)
        n = seconds_to_samples(getattr(dm, "clip_s", None), sr)
        return Sample(path.name, (fit_clip(wave, n, random=False) if n else wave).unsqueeze(0))
    lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    return _text_sample(loaded, lines[0] if lines else "", path.name)


def _text_sample(loaded: Loaded, text: str, name: str) -> Sample:
    x, _ = loaded.datamodule.collate([(text, 0)])
    return Sample(name, x, None, text)


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
