"""ThroughputMFU: perf/* figures from Lightning's Throughput meter and the torch flop counter."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bigmodel.callbacks import peak_flops as pf
from bigmodel.callbacks.peak_flops import peak_flops_per_device
from bigmodel.callbacks.throughput import ThroughputMFU, measure_batch_flops


def test_cpu_peak_is_measured():
    peak = peak_flops_per_device(torch.device("cpu"), "32-true")
    assert 1e8 < peak < 1e14  # FLOP/s of a real CPU


def test_gpu_table_by_precision():
    assert pf.gpu_peak_flops("h100", pf.precision_dtype("bf16-mixed")) == 989.4e12
    assert pf.gpu_peak_flops("A100", pf.precision_dtype("32-true")) == 156e12
    assert pf.gpu_peak_flops(1e15, "bf16") == 1e15


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


def test_window_below_two_batches_is_refused():
    with pytest.raises(ValueError, match="window_size=1"):
        ThroughputMFU(window_size=1)


def test_perf_metrics_land_on_the_logged_train_steps_only(make_cfg):
    """Figures go out with train/* on the steps Lightning logs (every log_every_n_steps optimizer steps,
    never while accumulating gradients) and not before the window is full."""
    import csv

    from bigmodel.train import train

    cfg = make_cfg(
        [
            "experiment=digits_mlp",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=12",
            "trainer.log_every_n_steps=2",
            "trainer.accumulate_grad_batches=2",
            "callbacks.throughput.window_size=3",
            "logger=csv",
        ]
    )
    train(cfg)
    rows = list(csv.DictReader((Path(cfg.paths.output_dir) / "csv" / "metrics.csv").open()))
    perf_steps = [int(r["step"]) for r in rows if r.get("perf/samples_per_sec")]
    loss_steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    # 12 batches, 2 per optimizer step: steps 1..6 logged at 2, 4, 6 (rows carry step - 1); the window of 3
    # batches is full from the 3rd batch on, so every logged step has figures
    assert loss_steps == [1, 3, 5]
    assert perf_steps == loss_steps
    assert all(float(r["perf/mfu"]) > 0 for r in rows if r.get("perf/mfu"))
