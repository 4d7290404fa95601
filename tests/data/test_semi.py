"""Few-label splits: the labelled subset, the unlabelled pool, its views and the bad inputs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from bigmodel.data.digits import DigitsDataModule
from bigmodel.data.semi import LABELED_IDS_FILE, SpeedPerturb, TimeShift, WordDropout
from bigmodel.data.splits import few_label_split
from bigmodel.data.text_classification import TextClassificationDataModule
from bigmodel.data.vision import ImageFolderDataModule
from bigmodel.utils.errors import ConfigError

LABELS = np.repeat(np.arange(4), [30, 20, 12, 50])


def test_few_label_split_per_class_disjoint_and_covering():
    lab, rest = few_label_split(LABELS, seed=1, labels_per_class=5)
    assert np.bincount(LABELS[lab]).tolist() == [5, 5, 5, 5]
    assert not set(lab) & set(rest)
    assert sorted([*lab, *rest]) == list(range(len(LABELS)))


def test_few_label_split_is_deterministic_by_seed():
    a = few_label_split(LABELS, seed=7, labels_per_class=3)[0]
    assert np.array_equal(a, few_label_split(LABELS, seed=7, labels_per_class=3)[0])
    assert not np.array_equal(a, few_label_split(LABELS, seed=8, labels_per_class=3)[0])


def test_few_label_split_fraction_keeps_every_class():
    lab, _ = few_label_split(LABELS, seed=0, labeled_fraction=0.1)
    assert np.bincount(LABELS[lab]).tolist() == [3, 2, 1, 5]


def test_labels_per_class_above_the_smallest_class_names_it():
    with pytest.raises(ConfigError, match=r"class 'c'.*only 12 training items"):
        few_label_split(LABELS, seed=0, labels_per_class=13, class_names=["a", "b", "c", "d"])


@pytest.mark.parametrize(
    "kwargs", [{}, {"labels_per_class": 2, "labeled_fraction": 0.5}, {"labeled_fraction": 0.0}]
)
def test_bad_few_label_settings(kwargs):
    with pytest.raises(ConfigError, match="data.label"):
        few_label_split(LABELS, seed=0, **kwargs)


def _digits(tmp_path, **kw):
    dm = DigitsDataModule(batch_size=8, seed=3, **kw)
    dm.trainer = SimpleNamespace(is_global_zero=True, default_root_dir=str(tmp_path), world_size=1)
    dm.setup("fit")
    return dm


def test_datamodule_pool_holds_no_labelled_item_and_ids_are_saved(tmp_path):
    full = DigitsDataModule(seed=3)
    full.setup("fit")
    dm = _digits(tmp_path, labels_per_class=4)
    assert len(dm.data_train) == 40 and len(dm.data_train) + len(dm.data_unlabeled) == len(full.data_train)
    pool_ids = set(dm.data_unlabeled.base.datasets[0].indices)
    assert not pool_ids & set(dm.data_train.indices)
    saved = json.loads((tmp_path / LABELED_IDS_FILE).read_text())
    assert saved["labeled_ids"] == dm.data_train.indices == dm.state_dict()["labeled_ids"]["labeled_ids"]
    assert len(dm.val_dataloader().dataset) == len(full.data_val)  # val/test untouched
    assert _digits(tmp_path, labels_per_class=4).data_train.indices == dm.data_train.indices


def test_combined_loader_batches_and_error_without_pool(tmp_path):
    dm = _digits(tmp_path, labels_per_class=2)
    dm.enable_unlabeled(3)
    batch, *_ = next(iter(dm.train_dataloader()))
    (x, _), (xw, xs, y_hidden) = batch["labeled"], batch["unlabeled"]
    assert x.shape == (8, 1, 8, 8) and xw.shape == xs.shape == (24, 1, 8, 8) and y_hidden.shape == (24,)
    with pytest.raises(ConfigError, match="needs an unlabelled pool.*data.labels_per_class"):
        _digits(tmp_path).enable_unlabeled(3)


def test_labels_per_class_too_large_in_a_datamodule(tmp_path):
    with pytest.raises(ConfigError, match=r"labels_per_class=500 is larger than class '\d'"):
        _digits(tmp_path, labels_per_class=500)


def _image_folder(root, n_per_class=6):
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(np.full((10, 10, 3), 20 * i, dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_image_folder_few_labels_and_unlabeled_root(tmp_path):
    root = _image_folder(tmp_path / "imgs", 10)
    extra = tmp_path / "unl" / "deep"
    extra.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(np.zeros((12, 12, 3), dtype=np.uint8)).save(extra / f"{i}.jpg")
    dm = ImageFolderDataModule(
        root=str(root), num_classes=2, in_channels=3, image_size=8, batch_size=2, num_workers=0,
        labels_per_class=2, unlabeled_root=str(tmp_path / "unl"),
        strong_transforms=[{"_target_": "torchvision.transforms.v2.RandomErasing", "p": 1.0, "value": 255}],
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.data_train) == 4
    n_rest = sum(len(p) for p, _ in [dm.split_files["train"]]) - 4
    assert len(dm.data_unlabeled) == n_rest + 5
    xw, xs, y = dm.data_unlabeled[len(dm.data_unlabeled) - 1]  # an unlabelled_root image: no label
    assert y == -1 and xw.dtype == torch.uint8 and (xs == 255).any() and not (xw == 255).any()


def test_unlabeled_root_missing_is_a_config_error(tmp_path):
    dm = ImageFolderDataModule(
        root=str(_image_folder(tmp_path / "imgs")), num_classes=2, in_channels=3, image_size=8,
        num_workers=0, unlabeled_root=str(tmp_path / "nope"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="data.unlabeled_root=.*nope"):
        dm.setup("fit")


def test_text_few_labels_with_unlabeled_file_and_views(tmp_path):
    rows = [(f"good film number {i}", "1") for i in range(8)] + [
        (f"bad film number {i}", "0") for i in range(8)
    ]
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    extra = tmp_path / "unl.txt"
    extra.write_text("an unlabelled review\n\nanother one here\n", encoding="utf-8")
    dm = TextClassificationDataModule(
        train_file=str(train), tokenizer={"kind": "bpe", "vocab_size": 300}, batch_size=2, cache_dir=str(tmp_path),
        split_fractions=[0.5, 0.25, 0.25], labels_per_class=2, unlabeled_root=str(extra),
        strong_transforms=[{"_target_": "bigmodel.data.semi.WordDropout", "p": 0.5}],
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.data_train) == 4 and len(dm.data_unlabeled) == 4 + 2
    assert "labeled_ids" in dm.state_dict() and "tokenizer" in dm.state_dict()
    dm.enable_unlabeled(2)
    batch, *_ = next(iter(dm.train_dataloader()))
    xw, xs, y_hidden = batch["unlabeled"]
    assert xw.dtype == torch.long and xw.shape[0] == xs.shape[0] == 4 and set(y_hidden.tolist()) <= {-1, 0, 1}


def test_weak_strong_helpers():
    wave = torch.arange(100.0)
    shifted = TimeShift(max_shift_s=0.05, sample_rate_hz=100)(wave)
    assert shifted.shape == wave.shape and sorted(shifted.tolist()) == wave.tolist()
    out = WordDropout(p=0.5)("one two three four five six seven eight")
    assert 1 <= len(out.split()) <= 8 and set(out.split()) <= set(
        "one two three four five six seven eight".split()
    )
    assert WordDropout(p=0.9)("single") == "single"  # never empty


@pytest.mark.parametrize("factor", [0.9, 1.2])
def test_speed_perturb_scales_the_pitch_and_keeps_the_length(factor):
    sr, f0 = 8000, 440.0
    wave = torch.sin(2 * torch.pi * f0 * torch.arange(sr) / sr)
    out = SpeedPerturb([factor], sample_rate_hz=sr)(wave)
    assert out.shape == wave.shape
    # the dominant frequency of the centre 0.5 s moves by the factor (1 Hz FFT bins over 8000 samples)
    seg = out[sr // 4 : 3 * sr // 4]
    peak_hz = torch.fft.rfft(seg).abs().argmax().item() * sr / len(seg)
    assert abs(peak_hz - f0 * factor) <= 4.0, peak_hz
    assert torch.equal(SpeedPerturb([1.0], sample_rate_hz=sr)(wave), wave)


@pytest.mark.parametrize(
    ("factors", "sample_rate_hz"),
    [
        ([], 8000),
        ([0.0, 1.0], 8000),
        ([-1.0], 8000),
        ([1e-5], 8000),
        (1.1, 8000),
        ("0.9", 8000),
        ([float("nan")], 8000),
        ([float("inf")], 8000),
        ([1.1], 0),
        ([1.1], -8000),
        ([0.97], 22050),  # 21389 -> 22050 Hz does not reduce: a kernel of ~10^8 taps
    ],
)
def test_speed_perturb_bad_factors(factors, sample_rate_hz):
    with pytest.raises(ConfigError, match="SpeedPerturb"):
        SpeedPerturb(factors, sample_rate_hz=sample_rate_hz)


def test_audio_folder_few_labels_and_unlabeled_root(tmp_path):
    import soundfile as sf

    from bigmodel.data.audio import AudioFolderDataModule
    from tests.helpers.audio_files import tone

    for c, f in (("low", 300.0), ("high", 900.0)):
        (tmp_path / "clips" / c).mkdir(parents=True)
        for i in range(10):
            sf.write(tmp_path / "clips" / c / f"{i}.wav", tone(0.2, 8000, f), 8000)
    (tmp_path / "unl" / "a").mkdir(parents=True)
    for i in range(3):
        sf.write(tmp_path / "unl" / "a" / f"{i}.flac", tone(0.2, 8000, 500.0), 8000)
    dm = AudioFolderDataModule(
        root=str(tmp_path / "clips"), sample_rate_hz=8000, clip_s=0.25, batch_size=2, split_fractions=[0.6, 0.2, 0.2],
        labels_per_class=2, unlabeled_root=str(tmp_path / "unl"),
        weak_transforms=[{"_target_": "bigmodel.data.semi.TimeShift", "max_shift_s": 0.01, "sample_rate_hz": 8000}],
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.data_train) == 4 and len(dm.data_unlabeled) == 12 - 4 + 3
    assert all(str(tmp_path / "clips") in f for f in dm.labeled_record["labeled_files"])
    dm.enable_unlabeled(2)
    batch, *_ = next(iter(dm.train_dataloader()))
    xw, xs, y_hidden = batch["unlabeled"]
    assert xw.shape == xs.shape == (4, 2000) and batch["labeled"][0].shape == (2, 2000)
