"""Audio classification DataModules: spoken digits (FSDD), Speech Commands v0.02 and the user's own folder.

Batches are ``(waves, labels, lengths)``: ``waves (B, T)`` float32 mono at ``sample_rate_hz``, ``labels (B,)``
int64 class ids, ``lengths (B,)`` samples before padding. With ``clip_s`` set every clip is cropped/padded
to ``clip_s`` seconds (random position in train, centred in val/test); with ``clip_s=null`` clips keep their
length and are zero-padded per batch. Log-mel features are computed on the device by the model's
``frontend`` (``bigmodel.nets.audio_frontend.LogMelFrontend``), in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from bigmodel.data.audio_download import find_fsdd, find_speech_commands
from bigmodel.data.audio_io import AUDIO_EXTENSIONS, AudioClipDataset, pad_collate, seconds_to_samples
from bigmodel.data.base import BaseDataModule
from bigmodel.data.folders import BadFileHandler, scan_folder_splits
from bigmodel.data.splits import stratified_split
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

Items = list[tuple[Path, int]]


class AudioDataModule(BaseDataModule):
    """Shared clip settings of the audio DataModules; subclasses implement ``_split_items()``.

    Args:
        sample_rate_hz: every clip is resampled to this rate (Hz).
        clip_s: clip length in seconds (crop/pad), or ``None`` for variable-length batches.
        num_classes: must match the dataset's class count; nets read it as ``${data.num_classes}``.
        on_bad_file: ``warn`` skips an unreadable file naming it, ``error`` raises.
        preload: decode every file once in ``setup`` into memory (fast epochs, bad files dropped up
            front); ``false`` decodes per item in the loader workers (datasets larger than memory).
        **kwargs: loader settings, see :class:`BaseDataModule`.

    Raises:
        ConfigError: a non-positive sample rate or clip length; ``num_classes`` not matching the data.
        BadFileError: a bad file under ``on_bad_file=error``.
    """

    classes: list[str]

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        clip_s: float | None = 1.0,
        num_classes: int | None = None,
        on_bad_file: str = "warn",
        preload: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sample_rate_hz <= 0:
            raise ConfigError(
                f"data.sample_rate_hz={sample_rate_hz} must be a positive rate in Hz, e.g. 16000."
            )
        if clip_s is not None and clip_s <= 0:
            raise ConfigError(f"data.clip_s={clip_s} must be > 0 seconds, or null for variable-length clips.")
        self.sample_rate_hz = int(sample_rate_hz)
        self.clip_s = clip_s
        self.clip_samples = seconds_to_samples(clip_s, self.sample_rate_hz)
        self.num_classes = num_classes
        self.preload = preload
        self.on_bad = BadFileHandler(on_bad_file)

    def _split_items(self) -> tuple[dict[str, Items], list[str]]:
        """``{"train"|"val"|"test": [(path, label), ...]}`` and the class names."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        splits, classes = self._split_items()
        self.classes = list(classes)
        sets: dict[str, Dataset] = {}
        for name in ("train", "val", "test"):
            sets[name] = AudioClipDataset(
                splits[name],
                self.sample_rate_hz,
                self.clip_samples,
                train=name == "train",
                preload=self.preload,
                on_bad=self.on_bad,
            )
        self.data_train, self.data_val, self.data_test = sets["train"], sets["val"], sets["test"]
        self.on_bad.summary("audio files")
        if len(self.data_train) == 0:
            raise ConfigError("The training split holds no readable audio file; see the warnings above.")
        self.apply_few_labels()
        self.check_batch_size()

    collate = staticmethod(pad_collate)

    def _loader(self, dataset: Dataset | None, train: bool, **kwargs: Any) -> DataLoader:
        return super()._loader(dataset, train, collate_fn=pad_collate, **kwargs)

    def load_unlabeled_root(self, root: Path) -> Dataset:
        """Every audio file under ``root`` (any depth), as training clips labelled -1 (unknown)."""
        from bigmodel.data.semi import list_unlabeled_files

        files = list_unlabeled_files(root, AUDIO_EXTENSIONS)
        return AudioClipDataset(
            [(p, -1) for p in files], self.sample_rate_hz, self.clip_samples, True, self.preload, self.on_bad
        )


def parse_fsdd_name(path: Path) -> tuple[int, str, int] | None:
    """``(digit, speaker, index)`` from ``{digit}_{speaker}_{index}.wav``, or ``None`` if it does not match."""
    parts = path.stem.split("_")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or len(parts[0]) != 1:
        return None
    return int(parts[0]), parts[1], int(parts[2])


class SpokenDigitsDataModule(AudioDataModule):
    """Free Spoken Digit Dataset: 3,000 recordings (8 kHz mono WAV) of digits 0-9 by 6 speakers,
    50 takes each. Source: https://github.com/Jakobovski/free-spoken-digit-dataset (CC BY-SA 4.0).

    Reads ``<data_dir>/fsdd/recordings/{digit}_{speaker}_{index}.wav``. When that folder is absent and
    ``download`` is true, the public GitHub archive is downloaded into ``<cache_dir>/fsdd`` and its
    recordings verified against a SHA-256 manifest hash.

    Args:
        data_dir: dataset root (``paths.data_dir``).
        cache_dir: where a download goes (``paths.cache_dir``); never inside ``data_dir``.
        split: ``standard`` (takes 0-4 test, 5-49 train, the official split) or ``speaker`` (all
            takes of ``test_speaker`` are the test set: an unseen voice).
        test_speaker: the held-out speaker for ``split=speaker``.
        val_fraction: part of the training recordings carved out for validation (stratified by
            digit and speaker, seeded by ``seed``).
        download: download when the recordings are not found.
        **kwargs: see :class:`AudioDataModule`.

    Raises:
        ConfigError: an unknown split or speaker; recordings missing with no download possible (the
            message names the URL, expected path and checksum); a checksum mismatch.
    """

    classes = [str(d) for d in range(10)]

    def __init__(
        self,
        data_dir: str,
        cache_dir: str | None = None,
        split: str = "standard",
        test_speaker: str = "theo",
        val_fraction: float = 0.1,
        download: bool = True,
        sample_rate_hz: int = 8000,
        clip_s: float | None = 1.0,
        num_classes: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate_hz=sample_rate_hz, clip_s=clip_s, num_classes=num_classes, **kwargs)
        if split not in ("standard", "speaker"):
            raise ConfigError(f"data.split={split!r} is not one of: standard (takes 0-4 test), speaker.")
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1).")
        self.check_num_classes(self.classes, "FSDD")
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir) if cache_dir else None
        self.split, self.test_speaker, self.val_fraction, self.download = (
            split,
            test_speaker,
            val_fraction,
            download,
        )

    def _split_items(self) -> tuple[dict[str, Items], list[str]]:
        rec = find_fsdd(self.data_dir, self.cache_dir, self.download)
        files = []
        for path in sorted(rec.glob("*.wav")):
            meta = parse_fsdd_name(path)
            if meta is None:
                self.on_bad(path, "name is not {digit}_{speaker}_{index}.wav, so it has no label")
            else:
                files.append((path, *meta))
        speakers = sorted({s for _, _, s, _ in files})
        if self.split == "speaker" and self.test_speaker not in speakers:
            raise ConfigError(
                f"data.test_speaker={self.test_speaker!r} is not an FSDD speaker; pick one of {speakers}."
            )
        in_test = (lambda s, i: s == self.test_speaker) if self.split == "speaker" else (lambda s, i: i < 5)
        test = [(p, d) for p, d, s, i in files if in_test(s, i)]
        rest = [(p, d, s) for p, d, s, i in files if not in_test(s, i)]
        strata = [d * len(speakers) + speakers.index(s) for _, d, s in rest]
        train_idx, val_idx = stratified_split(strata, [1 - self.val_fraction, self.val_fraction], self.seed)
        train = [(rest[i][0], rest[i][1]) for i in train_idx]
        val = [(rest[i][0], rest[i][1]) for i in val_idx]
        return {"train": train, "val": val, "test": test}, self.classes


class SpeechCommandsDataModule(AudioDataModule):
    """Google Speech Commands v0.02: 105,829 one-second 16 kHz clips of 35 words (keyword spotting),
    with the official ``validation_list.txt``/``testing_list.txt`` split (Warden 2018,
    https://arxiv.org/abs/1804.03209; CC BY 4.0). ``_background_noise_`` is not a class.

    Looks for an extracted copy at ``<data_dir>/speech_commands/`` (holding ``validation_list.txt``), then
    for the archive ``speech_commands_v0.02.tar.gz`` in ``<data_dir>/speech_commands/`` or
    ``<cache_dir>/speech_commands/`` (checksum-verified, extracted into the cache), then downloads it when
    ``download`` is true. Clips are decoded per item (``preload=false`` by default: 105k clips).

    Raises:
        ConfigError: no local copy and no download possible (naming the URL, the expected archive path
            and its SHA-256), a checksum mismatch, or ``num_classes`` other than the word count.
    """

    def __init__(
        self,
        data_dir: str,
        cache_dir: str | None = None,
        download: bool = True,
        sample_rate_hz: int = 16000,
        clip_s: float | None = 1.0,
        num_classes: int = 35,
        preload: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            sample_rate_hz=sample_rate_hz, clip_s=clip_s, num_classes=num_classes, preload=preload, **kwargs
        )
        self.data_dir, self.cache_dir, self.download = (
            Path(data_dir),
            Path(cache_dir) if cache_dir else None,
            download,
        )

    def _split_items(self) -> tuple[dict[str, Items], list[str]]:
        root = find_speech_commands(self.data_dir, self.cache_dir, self.download)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
        self.check_num_classes(classes, str(root))
        idx = {c: i for i, c in enumerate(classes)}
        lists = {}
        for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
            lines = (root / name).read_text().split()
            lists[split] = {Path(line).as_posix() for line in lines}
        out: dict[str, Items] = {"train": [], "val": [], "test": []}
        for c in classes:
            for path in sorted((root / c).glob("*.wav")):
                rel = f"{c}/{path.name}"
                split = "val" if rel in lists["val"] else "test" if rel in lists["test"] else "train"
                out[split].append((path, idx[c]))
        return out, classes


class AudioFolderDataModule(AudioDataModule):
    """The user's own clips: ``root/<class>/*.{wav,flac,ogg}`` (split by ``split_fractions``, stratified
    and seeded) or ``root/{train,val,test}/<class>/...`` (missing val/test carved from train), with the
    same folder rules as the image folder (``bigmodel.data.folders.scan_folder_splits``).

    Args:
        root: the dataset folder.
        extensions: audio file extensions to read; other files are ignored.
        split_fractions: train/val/test fractions.
        drop_empty_classes: drop an empty class folder with a warning instead of raising.
        **kwargs: see :class:`AudioDataModule`.

    Raises:
        ConfigError: a missing folder, an empty class folder, fewer than two classes, or
            ``num_classes`` not matching the folders.
    """

    def __init__(
        self,
        root: str,
        extensions: Sequence[str] = AUDIO_EXTENSIONS,
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
        drop_empty_classes: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.extensions = list(extensions)
        self.split_fractions = list(split_fractions)
        self.drop_empty_classes = drop_empty_classes

    def _split_items(self) -> tuple[dict[str, Items], list[str]]:
        splits, classes = scan_folder_splits(
            self.root,
            self.extensions,
            self.split_fractions,
            self.seed,
            self.drop_empty_classes,
            on_bad_file=self.on_bad.policy,
        )
        self.check_num_classes(classes, str(self.root))
        return {k: list(zip(p, y, strict=True)) for k, (p, y) in splits.items()}, classes
