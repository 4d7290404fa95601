"""The vision experiments and data/net configs: compose, instantiate, run (image_folder_resnet end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import torch

from bigmodel.eval import evaluate
from bigmodel.models.optim import build_optimizer, build_scheduler
from bigmodel.train import train
from tests.conftest import QUIET, run_cli

EXPERIMENTS = ["mnist_cnn", "fashion_mnist_resnet", "cifar10_resnet", "cifar10_vit", "image_folder_resnet"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={e}"] for e in EXPERIMENTS]
    # every data config with every net (the default experiment, digits_cnn, sets no net keys)
    + [
        ["data=mnist", "net=vit", "model.net.patch_size=7"],
        ["data=image_folder", "net=big_mlp"],
        ["data=fashion_mnist", "net=small_cnn"],
        ["data=cifar10", "net=vit"],
        ["data=cifar10", "net=resnet"],
    ],
    ids=lambda o: "+".join(x.split("=")[-1] for x in o),
)
def test_configs_compose_and_instantiate(make_cfg, overrides):
    cfg = make_cfg([*QUIET, *overrides])
    dm = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, _recursive_=False)
    assert dm.num_classes == cfg.model.num_classes == 10
    x = torch.zeros(2, dm.in_channels, dm.image_size, dm.image_size, dtype=torch.uint8)
    with torch.no_grad():
        assert model.eval()(dm.normalize(x)).shape == (2, 10)
    opt = build_optimizer(model.hparams.optimizer, model.parameters())
    assert build_scheduler(model.hparams.scheduler, opt, 100, 1)["interval"] == "step"


def test_image_folder_resnet_end_to_end_with_per_class_accuracy(make_cfg, shared_data):
    cfg = make_cfg(
        [
            *QUIET,
            "experiment=image_folder_resnet",
            "trainer.max_epochs=1",
            "model.net.width=8",
            "+trainer.limit_train_batches=6",
            "+trainer.limit_val_batches=2",
        ]
    )
    train(cfg)
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    per_class = [saved[f"test/acc_{c}"] for c in CIFAR_CLASSES]
    # the test split has 20 images of every class, so the mean per-class accuracy is the accuracy
    assert sum(per_class) / 10 == pytest.approx(saved["test/acc"], abs=1e-5)
    ckpt = torch.load(saved["best_ckpt_path"], map_location="cpu", weights_only=True)
    assert ckpt["class_names"] == CIFAR_CLASSES
    assert ckpt["bigmodel"]["config"]["data"]["mean"] == [0.4914, 0.4822, 0.4465]
    # eval rebuilds the folder split, normalisation and class names from the checkpoint alone
    again = evaluate(make_cfg(["extras.print_config=false", f"ckpt_path={saved['best_ckpt_path']}"], "eval"))
    assert float(again["test/acc"]) == pytest.approx(saved["test/acc"])
    assert float(again["test/acc_truck"]) == pytest.approx(saved["test/acc_truck"])


@pytest.mark.slow
def test_mnist_cnn_reaches_99_percent(tmp_path, shared_data):
    res = run_cli(
        "bigmodel.train",
        "experiment=mnist_cnn",
        f"paths.data_dir={shared_data}",
        f"paths.log_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *QUIET,
        timeout=1800,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = list((tmp_path / "mnist_cnn" / "runs").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] >= 0.99


@pytest.mark.slow
def test_fashion_mnist_resnet_reaches_88_percent(tmp_path, shared_data):
    res = run_cli(
        "bigmodel.train",
        "experiment=fashion_mnist_resnet",
        f"paths.data_dir={shared_data}",
        f"paths.log_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *QUIET,
        timeout=3600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = list((tmp_path / "fashion_mnist_resnet" / "runs").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] >= 0.88
