"""What compression buys: bytes on disk, parameter counts, CPU latency and throughput, test metrics."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import nn


def state_dict_bytes(module: nn.Module) -> int:
    """Bytes of ``torch.save(module.state_dict())`` (what the weights cost on disk, without optimizer)."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def linear_weight_bytes(net: nn.Module) -> int:
    """Bytes of the weights of ``net``'s Linear layers as stored (int8 + scales after quantization).

    Counts ``torch.ao`` dynamic quantized Linears through their packed weight and torchao layers through
    their serialized size, so the figure is comparable across methods."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

    total = 0
    for m in net.modules():
        if isinstance(m, DynamicQuantLinear):
            w = m.weight()  # the quantized (qint8) weight
            total += w.int_repr().numel() + _qscale_bytes(w)
        elif isinstance(m, nn.Linear):
            w = m.weight.detach()
            if type(w) is torch.Tensor:
                total += w.numel() * w.element_size()
            else:  # a torchao tensor subclass: what it serializes to (int8 data + scales)
                buf = io.BytesIO()
                torch.save(w, buf)
                total += buf.tell()
    return total


def _qscale_bytes(w: torch.Tensor) -> int:
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        # float64 scales + int64 zero points, as stored
        return w.q_per_channel_scales().numel() * 8 + w.q_per_channel_zero_points().numel() * 8
    return 16


@torch.inference_mode()
def latency_ms(model: nn.Module, x: Any, min_s: float = 1.0, warmup: int = 3, max_iters: int = 200) -> float:
    """Median wall time in ms of ``model(x)`` on the CPU (after ``warmup`` calls), repeated for at least
    ``min_s`` seconds (and at least 5 times)."""
    for _ in range(warmup):
        model(x)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - started < min_s and len(times) < max_iters):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def model_batches(datamodule: L.LightningDataModule, n: int) -> list[Any]:
    """The first test batches (at least ``n`` samples) as the model sees them: through the datamodule's
    ``on_after_batch_transfer`` (e.g. MNIST keeps uint8 images and normalises them per batch there)."""
    out, seen = [], 0
    for batch in datamodule.test_dataloader():
        out.append(datamodule.on_after_batch_transfer(batch, 0))
        seen += len(batch[0]) if isinstance(batch, list | tuple) else len(batch)
        if seen >= n:
            break
    return out


def sample_batch(batches: Iterable[Any], n: int) -> Any:
    """The first ``n`` inputs of a test dataloader, repeated if it has fewer (for a batch-``n`` timing)."""
    xs = []
    for batch in batches:
        xs.append(batch[0] if isinstance(batch, list | tuple) else batch)
        if sum(len(x) for x in xs) >= n:
            break
    x = torch.cat(xs)
    while len(x) < n:
        x = torch.cat([x, x])
    return x[:n]


def speed(
    model: nn.Module, batches: Iterable[Any], sizes: tuple[int, ...] = (1, 64), min_s: float = 1.0
) -> dict:
    """``latency_ms_b<n>`` and ``samples_per_sec_b<n>`` for each batch size in ``sizes``."""
    out = {}
    x = sample_batch(batches, max(sizes))
    for n in sizes:
        ms = latency_ms(model, x[:n], min_s=min_s)
        out[f"latency_ms_b{n}"] = round(ms, 3)
        out[f"samples_per_sec_b{n}"] = round(1000 * n / ms, 1)
    return out


def test_metrics(module: L.LightningModule, datamodule: L.LightningDataModule) -> dict[str, float]:
    """``trainer.test`` on the CPU without loggers or callbacks: ``{"test/acc": ..., ...}``."""
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.test(module, datamodule=datamodule, verbose=False)
    return {k: round(float(v), 6) for k, v in metrics.items()}
