"""Few-label training sets for semi-supervised learning, shared by every classification DataModule.

``data.labels_per_class=N`` (or ``data.labeled_fraction=f``) keeps a seeded, stratified labelled subset
of the training split (:func:`bigmodel.data.splits.few_label_split`); the rest of the training split,
plus any ``data.unlabeled_root`` folder, becomes the unlabelled pool. Val and test are untouched.

Each unlabelled item is one sample seen twice, a weak and a strong view (FixMatch, Sohn et al. 2020,
https://arxiv.org/abs/2001.07685): ``(x_weak, x_strong, y_hidden)``. ``y_hidden`` is the true label kept
only so the model can *monitor* pseudo-label accuracy (``-1`` where unknown, e.g. ``unlabeled_root``);
:class:`bigmodel.models.semi_supervised.SemiSupervisedModule` never puts it in the loss.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import ConcatDataset, Dataset, Subset

from bigmodel.data.splits import few_label_split
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write

log = logging.getLogger(__name__)

LABELED_IDS_FILE = "labeled_ids.json"


def build_callables(specs: Sequence[Any] | None, key: str) -> Callable | None:
    """One callable applying ``specs`` in order (Hydra configs with ``_target_``, or callables);
    ``None`` for an empty list. Works for any item type (images, waveforms, strings)."""
    if not specs:
        return None
    fns = []
    for spec in specs:
        if isinstance(spec, dict | DictConfig):
            spec = hydra.utils.instantiate(OmegaConf.create(spec) if isinstance(spec, dict) else spec)
        if not callable(spec):
            raise ConfigError(f"{key}: {spec!r} is not callable; give `_target_: <a transform class>`.")
        fns.append(spec)

    def apply(x: Any) -> Any:
        for fn in fns:
            x = fn(x)
        return x

    return apply


@dataclass
class FewLabelSpec:
    """The few-label settings of a DataModule (``data.*`` keys of the same names)."""

    labels_per_class: int | None = None
    labeled_fraction: float | None = None
    unlabeled_root: str | None = None
    weak_transforms: Sequence[Any] | None = None
    strong_transforms: Sequence[Any] | None = None

    @property
    def active(self) -> bool:
        return (
            self.labels_per_class is not None
            or self.labeled_fraction is not None
            or self.unlabeled_root is not None
        )


def dataset_labels(ds: Dataset) -> np.ndarray:
    """Class ids of every item: the dataset's ``labels`` attribute when it has one (every dataset of
    this package does), else read item by item (slow for datasets that decode files)."""
    labels = getattr(ds, "labels", None)
    if labels is None and getattr(ds, "tensors", None) is not None:  # a TensorDataset (x, y)
        labels = ds.tensors[1]
    if labels is None:
        labels = [ds[i][1] for i in range(len(ds))]  # type: ignore[arg-type]
    return np.asarray(torch.as_tensor(labels)).astype(np.int64)


class UnlabeledViews(Dataset):
    """``(weak(x), strong(x), y_hidden)`` for every item ``(x, y, ...)`` of ``base``.

    Both views start from the same draw of ``base[i]`` (which may already hold a random crop), so they
    show the same sample. ``weak``/``strong`` of ``None`` pass ``x`` through (e.g. audio, whose strong
    augmentation is the model frontend's SpecAugment, on the device).
    """

    def __init__(self, base: Dataset, weak: Callable | None, strong: Callable | None) -> None:
        self.base, self.weak, self.strong = base, weak, strong

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        item = self.base[i]
        x, y = item[0], int(item[1])
        return (self.weak(x) if self.weak else x), (self.strong(x) if self.strong else x), y


def views_collate(collate: Callable) -> Callable:
    """Wrap a modality's collate ``[(x, y), ...] -> (X, Y, ...)`` into one for :class:`UnlabeledViews`
    items: returns ``(X_weak, X_strong, Y_hidden)``, each view collated (padded, tokenized) on its own."""

    def collate_views(batch: Sequence[tuple[Any, Any, int]]) -> tuple[Any, Any, torch.Tensor]:
        weak = collate([(w, y) for w, _, y in batch])
        strong = collate([(s, y) for _, s, y in batch])
        return weak[0], strong[0], torch.tensor([y for _, _, y in batch], dtype=torch.long)

    return collate_views


def carve_few_labels(
    train: Dataset,
    spec: FewLabelSpec,
    seed: int,
    class_names: Sequence[str] | None,
    extra_unlabeled: Dataset | None,
) -> tuple[Dataset, Dataset | None, dict[str, Any]]:
    """Split ``train`` by ``spec``: returns ``(labelled subset, unlabelled pool or None, record)``.

    The record (saved as ``labeled_ids.json`` and in the checkpoint) lists the labelled indices into the
    training split and, where the dataset knows its files, their paths.
    """
    n = len(train)  # type: ignore[arg-type]
    if spec.labels_per_class is None and spec.labeled_fraction is None:
        lab, rest = np.arange(n), np.array([], dtype=np.int64)
    else:
        names = list(class_names) if class_names else None
        lab, rest = few_label_split(
            dataset_labels(train), seed, spec.labels_per_class, spec.labeled_fraction, names
        )
    weak = build_callables(spec.weak_transforms, "data.weak_transforms")
    strong = build_callables(spec.strong_transforms, "data.strong_transforms")
    parts = [Subset(train, rest.tolist())] if len(rest) else []
    if extra_unlabeled is not None:
        parts.append(extra_unlabeled)
    pool = UnlabeledViews(ConcatDataset(parts), weak, strong) if parts else None
    record: dict[str, Any] = {
        "seed": seed,
        "labels_per_class": spec.labels_per_class,
        "labeled_fraction": spec.labeled_fraction,
        "num_train": n,
        "num_labeled": len(lab),
        "num_unlabeled": len(pool) if pool is not None else 0,
        "labeled_ids": lab.tolist(),
    }
    files = _item_files(train)
    if files is not None:
        record["labeled_files"] = [str(files[i]) for i in lab]
    log.info(
        "Few labels: %d labelled of %d training items, %d unlabelled in the pool",
        len(lab), n, record["num_unlabeled"],
    )  # fmt: skip
    return Subset(train, lab.tolist()), pool, record


def _item_files(ds: Dataset) -> list[Any] | None:
    if getattr(ds, "paths", None) is not None:
        return list(ds.paths)
    if getattr(ds, "items", None) is not None:
        return [p for p, _ in ds.items]
    return None


def save_labeled_ids(record: dict[str, Any], trainer: Any) -> None:
    """Write ``<run dir>/labeled_ids.json`` (rank 0), so the labelled subset of a run can be audited."""
    if trainer is not None and trainer.is_global_zero and trainer.default_root_dir:
        with atomic_write(Path(trainer.default_root_dir) / LABELED_IDS_FILE, "w") as f:
            json.dump(record, f, indent=1)


class TimeShift:
    """Weak audio augmentation: roll a waveform ``(T,)`` by up to ``max_shift_s`` seconds either way
    (circular, so the clip keeps its length)."""

    def __init__(self, max_shift_s: float = 0.1, sample_rate_hz: int = 16000) -> None:
        self.max_shift = round(max_shift_s * sample_rate_hz)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        if self.max_shift <= 0:
            return wave
        return torch.roll(wave, random.randint(-self.max_shift, self.max_shift), dims=-1)


class SpeedPerturb:
    """Strong audio augmentation: play a waveform ``(T,)`` at a speed drawn from ``factors`` (tempo and
    pitch change together, as in Ko et al. 2015, "Audio Augmentation for Speech Recognition"), then crop
    or zero-pad it back to ``T`` samples (centred, :func:`bigmodel.data.audio_io.fit_clip`) so a batch keeps
    one shape. A factor of 1.1 makes the clip 1/1.1 as long (9% shorter) and 10% higher. Each factor is one torchaudio ``transforms.Resample``
    from ``round(factor * sample_rate_hz)`` to ``sample_rate_hz`` Hz, built once so its windowed-sinc kernel
    is cached. Its cost grows with the reduced ratio of those two rates: factors in steps of 0.05 at 8 or
    16 kHz reduce to ratios such as 17/20 and take about 0.3 ms per 1 s clip on one thread, while 0.97 at
    22,050 Hz does not reduce and would need a kernel of about 10^8 taps, so it is refused.

    Args:
        factors: speeds drawn uniformly (each a finite number > 0), e.g. ``[0.85, 0.9, 0.95, 1.0, 1.05,
            1.1, 1.15]``.
        sample_rate_hz: the clips' sample rate (Hz), > 0.

    Raises:
        ConfigError: ``factors`` not a non-empty list of finite numbers > 0, ``sample_rate_hz`` not a
            positive integer, or a factor whose rates reduce to a ratio above ``MAX_RATIO_TERM`` (a kernel
            too large to build).
    """

    MAX_RATIO_TERM = 1000

    def __init__(self, factors: Sequence[float] = (0.9, 1.0, 1.1), sample_rate_hz: int = 16000) -> None:
        where = "SpeedPerturb (in data.strong_transforms / data.weak_transforms)"
        if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, int) or sample_rate_hz <= 0:
            raise ConfigError(f"{where}: sample_rate_hz={sample_rate_hz!r} must be a positive integer (Hz).")
        if isinstance(factors, str | bytes) or not isinstance(factors, Sequence) or not factors:
            raise ConfigError(
                f"{where}: factors={factors!r} must be a non-empty list of speeds, e.g. [0.9, 1.1]."
            )
        if not all(isinstance(f, int | float) and not isinstance(f, bool) for f in factors):
            raise ConfigError(f"{where}: factors={list(factors)!r} must all be numbers.")
        factors = [float(f) for f in factors]
        if not all(math.isfinite(f) and f > 0 and round(f * sample_rate_hz) >= 1 for f in factors):
            raise ConfigError(f"{where}: factors={factors} must all be finite speeds > 0.")
        import torchaudio  # audio-only dependency, imported where it is used

        sr = sample_rate_hz
        self.resamplers = []
        for f in factors:
            src = round(f * sr)
            if src == sr:
                self.resamplers.append(None)
                continue
            g = math.gcd(src, sr)
            if max(src, sr) // g > self.MAX_RATIO_TERM:
                raise ConfigError(
                    f"{where}: factor {f} at {sr} Hz resamples {src} -> {sr} Hz, a ratio of "
                    f"{src // g}/{sr // g} whose kernel is too large; pick factors in steps of 0.05 (e.g. 0.9, 1.1)."
                )
            self.resamplers.append(torchaudio.transforms.Resample(src, sr))

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        resample = random.choice(self.resamplers)
        if resample is None:
            return wave
        from bigmodel.data.audio_io import fit_clip  # audio-only (soundfile, torchaudio): imported on use

        with torch.no_grad():
            out = resample(wave.float())
        return fit_clip(out, wave.shape[-1], random=False)  # centred, as the clip's own crop in eval


class WordDropout:
    """Text augmentation on a raw string: drop each whitespace-separated word with probability ``p``
    and replace each kept word by ``mask_token`` with probability ``mask_p`` (token dropout/masking,
    as in UDA's and FixMatch-for-NLP strong views); never returns an empty string."""

    def __init__(self, p: float = 0.1, mask_p: float = 0.0, mask_token: str = "") -> None:
        if not 0 <= p < 1 or not 0 <= mask_p < 1:
            raise ConfigError(f"WordDropout: p={p} and mask_p={mask_p} must be in [0, 1).")
        self.p, self.mask_p, self.mask_token = p, mask_p, mask_token

    def __call__(self, text: str) -> str:
        words = text.split()
        kept = [w for w in words if random.random() >= self.p] or words[:1]
        if self.mask_p:
            kept = [self.mask_token if random.random() < self.mask_p else w for w in kept]
        return " ".join(w for w in kept if w) or text


def list_unlabeled_files(root: Path, extensions: Sequence[str]) -> list[Path]:
    """Every file under ``root`` (any depth, sorted) with one of ``extensions``.

    Raises:
        ConfigError: ``root`` is missing or holds no such file.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(
            f"data.unlabeled_root={root} is not a folder; point it at a folder of unlabelled files."
        )
    exts = {e.lower().lstrip(".") for e in extensions}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in exts)
    if not files:
        raise ConfigError(f"data.unlabeled_root={root} holds no file with extension {sorted(exts)}.")
    return files


def read_unlabeled_lines(root: Path) -> list[str]:
    """Non-empty stripped lines of ``root`` (a UTF-8 text file) or of every file under it.

    Raises:
        ConfigError: ``root`` is missing or has no non-empty line.
    """
    root = Path(root)
    if not root.exists():
        raise ConfigError(f"data.unlabeled_root={root} does not exist; give a text file (one text per line).")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    lines = [ln.strip() for f in files for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise ConfigError(f"data.unlabeled_root={root} holds no non-empty line of text.")
    return lines
