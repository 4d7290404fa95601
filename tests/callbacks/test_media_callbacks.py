"""Media callbacks (vision, audio, text LM, classification) in real in-process Lightning runs on small
synthetic batches of the right shapes, written to W&B (offline) and TensorBoard and read back."""

from __future__ import annotations

import math

import hydra
import lightning as L
import numpy as np
import pytest
import torch
import wandb
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from bigmodel.callbacks.media import heatmap, to_uint8_image
from bigmodel.callbacks.media_audio import MediaAudio
from bigmodel.callbacks.media_classification import MediaClassification, per_class_metrics
from bigmodel.callbacks.media_text import MediaText
from bigmodel.callbacks.media_vision import MediaVision
from bigmodel.loggers.wandb_logger import WandbLogger
from bigmodel.models.classification import ClassificationModule
from bigmodel.utils.errors import ConfigError
from tests.helpers.tb_events import tb_tags
from tests.helpers.wandb_offline import find_runs

OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}
RATE = 4000


class Data(L.LightningDataModule):
    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, classes: list[str], sample_rate_hz: int | None = None
    ):
        super().__init__()
        self.ds, self.classes, self.sample_rate_hz = TensorDataset(x, y), classes, sample_rate_hz

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=16)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=16)


def images(n: int = 48) -> Data:
    g = torch.Generator().manual_seed(0)
    return Data(
        torch.rand(n, 1, 8, 8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
        [f"d{i}" for i in range(10)],
    )


def waves(n: int = 24) -> Data:
    t = torch.arange(RATE // 2) / RATE
    y = torch.arange(n) % 3
    x = torch.stack([0.5 * torch.sin(2 * math.pi * (200 + 300 * int(c)) * t) for c in y])
    return Data(x, y, ["low", "mid", "high"], sample_rate_hz=RATE)


def fit(tmp_path, module, data, callbacks, loggers, epochs: int = 2) -> None:
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=loggers,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    try:
        trainer.fit(module, datamodule=data)
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.finish()
        wandb.teardown()  # the W&B service writes the .wandb file fully only when it stops


def image_classifier() -> ClassificationModule:
    net = {
        "_target_": "torch.nn.Sequential",
        "_args_": [
            {"_target_": "torch.nn.Flatten"},
            {"_target_": "torch.nn.Linear", "in_features": 64, "out_features": 10},
        ],
    }
    return ClassificationModule(net, OPT, num_classes=10)


def loggers(tmp_path):
    return [
        WandbLogger(save_dir=tmp_path, experiment="media", offline=True),
        TensorBoardLogger(tmp_path / "tensorboard", name=None, version=""),
    ]


def test_vision_and_confusion_matrix_reach_wandb_and_tensorboard(tmp_path):
    module = image_classifier()
    cbs = [MediaVision(max_images=8, max_misclassified=4), MediaClassification()]
    fit(tmp_path, module, images(), cbs, loggers(tmp_path))

    (run,) = find_runs(tmp_path)
    # once per validation epoch (2), never for the sanity check
    for key in ("val/samples", "val/misclassified", "val/per_class", "val/confusion_matrix_table"):
        assert len(run.steps(key)) == 2, key
    row = next(r for r in run.history if "val/samples" in r)
    assert row["val/samples"]["count"] == 8
    assert all(c.startswith("true: d") and " / pred: d" in c for c in row["val/samples"]["captions"])
    assert row["val/samples"]["width"] >= 64  # 8x8 digits enlarged for display
    assert len(run.media_files("images")) >= 8 + 1  # 8 samples (PNG files are deduplicated by content)
    assert len(run.media_files("table")) == 4  # confusion matrix + per-class table, 2 epochs
    tags = tb_tags(tmp_path / "tensorboard")
    assert {"val/samples", "val/misclassified", "val/confusion_matrix"} <= tags["images"]
    assert {"val/samples_labels", "val/per_class"} <= tags["text"]


def test_audio_clips_and_log_mel_reach_wandb_and_tensorboard(tmp_path):
    module = ClassificationModule(
        {"_target_": "torch.nn.Linear", "in_features": RATE // 2, "out_features": 3}, OPT, num_classes=3
    )
    fit(
        tmp_path,
        module,
        waves(),
        [MediaAudio(max_clips=3, n_mels=32, n_fft=256)],
        loggers(tmp_path),
        epochs=1,
    )

    (run,) = find_runs(tmp_path)
    row = next(r for r in run.history if "val/audio" in r)
    assert row["val/audio"]["count"] == 3 and row["val/log_mel"]["count"] == 3
    assert row["val/audio"]["sampleRates"] == [RATE] * 3
    assert all(c.startswith("true: ") for c in row["val/audio"]["captions"])
    assert len(run.media_files("audio")) == 3 and all(p.suffix == ".wav" for p in run.media_files("audio"))
    tags = tb_tags(tmp_path / "tensorboard")
    assert {"val/audio/0", "val/audio/2"} <= tags["audio"]
    assert {"val/log_mel/0", "val/log_mel/2"} <= tags["images"] and "val/audio_labels" in tags["text"]


class TinyLM(L.LightningModule):
    """Stands in for the language-model module: the only thing the callback uses is generate_sample."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", (self.w - 1).pow(2).sum())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def generate_sample(self, prompt: str = "", max_new_tokens: int = 200) -> str:
        assert not self.training and not torch.is_grad_enabled()
        return prompt + "".join(chr(97 + int(i)) for i in torch.randint(0, 26, (max_new_tokens,)))


def test_generated_text_table_grows_over_steps(tmp_path):
    cb = MediaText(prompts=["To be", ""], max_new_tokens=12, every_n_epochs=2)
    fit(tmp_path, TinyLM(), images(), [cb], loggers(tmp_path), epochs=3)

    (run,) = find_runs(tmp_path)
    steps = run.steps("val/generated")
    assert len(steps) == 2 and steps[0] < steps[1]  # validation epochs 1 and 3 of 3 (every_n_epochs=2)
    assert len(run.media_files("table")) == 2
    assert [r[2] for r in cb.rows] == ["To be", "", "To be", ""]
    assert cb.rows[0][3] == cb.rows[2][3]  # same seed every time: samples differ only when the model does
    assert "val/generated" in tb_tags(tmp_path / "tensorboard")["text"]


def test_text_callback_needs_generate_sample(tmp_path):
    module = image_classifier()
    with pytest.raises(ConfigError, match="generate_sample"):
        fit(tmp_path, module, images(), [MediaText()], loggers(tmp_path), epochs=1)


def test_csv_only_is_a_silent_noop(tmp_path):
    module = image_classifier()
    cbs = [MediaVision(), MediaClassification(), MediaAudio(sample_rate_hz=RATE)]
    fit(tmp_path, module, images(), cbs, [CSVLogger(tmp_path, name="csv")], epochs=1)
    assert cbs[0].samples == [] and cbs[1].preds == []  # nothing collected without W&B/TensorBoard
    assert not list(tmp_path.rglob("offline-run-*")) and not list(tmp_path.rglob("events.out.tfevents.*"))


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="every_n_epochs"):
        MediaVision(every_n_epochs=0)
    with pytest.raises(ConfigError, match="max_images"):
        MediaVision(max_images=10_000)
    with pytest.raises(ConfigError, match="max_clips"):
        MediaAudio(max_clips=0)
    with pytest.raises(ConfigError, match="prompts"):
        MediaText(prompts=[])


def test_audio_callback_rejects_features_instead_of_waveforms(tmp_path):
    module = image_classifier()
    with pytest.raises(ConfigError, match="raw waveforms"):
        fit(tmp_path, module, images(), [MediaAudio(sample_rate_hz=RATE)], loggers(tmp_path), epochs=1)


def test_per_class_metrics_match_hand_computed():
    # a hand-made batch whose confusion matrix (rows true, columns predicted) is
    # [[3, 1, 0], [0, 2, 0], [1, 0, 0]]: class 2 is never predicted
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 0, 1, 1, 1, 0])
    m = per_class_metrics(preds, target, 3)
    assert m["confusion"].tolist() == [[3, 1, 0], [0, 2, 0], [1, 0, 0]]
    np.testing.assert_allclose(m["precision"], [3 / 4, 2 / 3, 0.0])
    np.testing.assert_allclose(m["recall"], [3 / 4, 1.0, 0.0])
    np.testing.assert_allclose(m["f1"], [0.75, 0.8, 0.0], rtol=1e-6)
    assert m["support"].tolist() == [4, 2, 1]
    # a class absent from both predictions and targets scores 0, not NaN
    m4 = per_class_metrics(preds, target, 4)
    assert (
        m4["confusion"].shape == (4, 4)
        and [float(m4[k][3]) for k in ("precision", "recall", "f1")] == [0.0] * 3
    )


def test_image_helpers_scale_and_enlarge():
    img = to_uint8_image(torch.tensor([[[-1.0, 1.0], [0.0, 1.0]]]), min_size_px=8)
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8 and img.min() == 0 and img.max() == 255
    hm = heatmap(np.array([[0, 5], [10, 0]]))
    assert hm.shape == (2, 2, 3) and not np.array_equal(hm[0, 0], hm[1, 0])


def test_media_configs_compose_and_instantiate(make_cfg):
    cfg = make_cfg(["callbacks=[media_vision,media_classification,media_audio,media_text]"])
    made = {name: hydra.utils.instantiate(conf) for name, conf in cfg.callbacks.items()}
    assert isinstance(made["media_vision"], MediaVision) and made["media_vision"].name == "media_vision"
    assert isinstance(made["media_classification"], MediaClassification)
    assert isinstance(made["media_audio"], MediaAudio) and made["media_audio"].sample_rate_hz is None
    assert isinstance(made["media_text"], MediaText) and made["media_text"].prompts == [""]
    # the digits experiments include the classification and vision media callbacks
    assert {"media_classification", "media_vision"} <= set(make_cfg(["experiment=digits_mlp"]).callbacks)
