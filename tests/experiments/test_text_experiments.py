"""Every text experiment composes and instantiates; text classifiers train, test and eval end to end."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import torch

from bigmodel.eval import evaluate
from bigmodel.models.classification import ClassificationModule
from bigmodel.models.language_model import LanguageModelModule
from bigmodel.train import train
from tests.conftest import QUIET

EXPERIMENTS = {
    "shakespeare_char_gpt": LanguageModelModule,
    "text_file_bpe_gpt": LanguageModelModule,
    "sst2_transformer": ClassificationModule,
    "sst2_minilm": ClassificationModule,
    "sms_spam_transformer": ClassificationModule,
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_composes_and_instantiates(make_cfg, name):
    cfg = make_cfg([f"experiment={name}"])
    assert cfg.task_name == name
    dm = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, _recursive_=False)
    assert isinstance(model, EXPERIMENTS[name]) and dm.batch_size >= 1
    if name.startswith("sst2"):
        assert cfg.data.max_length <= 64 and cfg.data.num_classes == 2


def test_sst2_minilm_uses_the_models_tokenizer(make_cfg, shared_data):
    cfg = make_cfg(["experiment=sst2_minilm", "data.max_train_samples=64"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    x, _ = next(iter(dm.val_dataloader()))
    assert x[0, 0].item() == 101 and (x == 102).any(1).all()  # [CLS] ... [SEP] of the BERT vocabulary
    assert x.shape[1] <= 48


def test_text_classifier_trains_tests_and_evals(make_cfg, shared_data, tmp_path):
    cfg = make_cfg(
        ["experiment=sms_spam_transformer", *QUIET, "trainer.max_epochs=1", "+trainer.limit_train_batches=3",
         "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2", "trainer.accelerator=cpu"]
    )  # fmt: skip
    metrics = train(cfg)
    assert {"val/acc", "val/f1", "test/acc"} <= set(metrics)
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    ckpt = torch.load(saved["best_ckpt_path"], weights_only=True)
    assert ckpt["class_names"] == ["ham", "spam"]
    assert ckpt["TextClassificationDataModule"]["tokenizer"]["kind"] == "bpe"  # eval tokenizes the same way
    ecfg = make_cfg([f"ckpt_path={saved['best_ckpt_path']}", *QUIET[:1], "trainer.accelerator=cpu",
                     "+trainer.limit_test_batches=2"], "eval")  # fmt: skip
    assert abs(float(evaluate(ecfg)["test/acc"]) - float(metrics["test/acc"])) < 1e-6
