"""ThroughputMFU: perf/* figures from Lightning's ThroughputMonitor and the torch flop counter."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bigmodel.callbacks.throughput import measure_batch_flops, peak_flops_per_device
from bigmodel.utils import estimate_math as em


def test_cpu_peak_is_measured():
    peak = peak_flops_per_device(torch.device("cpu"), "32-true")
    assert 1e8 < peak < 1e14  # FLOP/s of a real CPU


def test_gpu_table_by_precision():
    assert em.gpu_peak_flops("h100", em.precision_dtype("bf16-mixed")) == 989.4e12
    assert em.gpu_peak_flops("A100", em.precision_dtype("32-true")) == 156e12
    assert em.gpu_peak_flops(1e15, "bf16") == 1e15


def test_lm_batch_flops_match_formula(make_cfg):
    cfg = make_cfg(
        ["model=language_model", "net=gpt_nano", "model.net.vocab_size=65", "model.net.block_size=256"],
        config_name="estimate",
    )
    from bigmodel.estimate import estimate

    fpt = estimate(cfg)["flops_per_token"]
    module = SimpleNamespace(hparams={"net": dict(cfg.model.net)}, frontend=None)
    batch = (torch.zeros(3, 256, dtype=torch.long), torch.zeros(3, 256, dtype=torch.long))
    assert measure_batch_flops(module, batch) == pytest.approx(3 * 256 * fpt, rel=0.01)


def test_training_logs_perf_metrics(make_cfg):
    from bigmodel.train import train

    cfg = make_cfg(
        [
            "experiment=digits_mlp",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "callbacks.throughput.window_size=3",
            "logger=csv",
        ]
    )
    metrics = train(cfg)
    assert 0 < float(metrics["train/acc"]) <= 1  # logged once per epoch
    assert metrics["perf/samples_per_sec"] > 0
    assert 0 < metrics["perf/mfu"] < 1
    assert metrics["perf/tflops_per_sec"] > 0
    assert "perf/tokens_per_sec" not in metrics  # images, not tokens
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert written["perf/mfu"] == pytest.approx(metrics["perf/mfu"])
