"""Peak FLOP/s per device, the denominator of MFU: used by the throughput callback
(:mod:`bigmodel.callbacks.throughput`) and by ``bigmodel.estimate``. Imports no Lightning at module level, so
``estimate`` stays quick to start."""

from __future__ import annotations

import functools
import time

import torch

from bigmodel.utils.errors import ConfigError

# Dense peak FLOP/s per device (no 2:4 sparsity), SXM parts, from NVIDIA's datasheets.
# `tf32` is the fp32 matmul peak with TF32 tensor cores (torch.set_float32_matmul_precision("high")).
GPU_PEAK_FLOPS: dict[str, dict[str, float]] = {
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    "H100": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "H200": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
}


def precision_dtype(precision: str) -> str:
    """The matmul dtype of a Lightning precision string: ``bf16``, ``fp16`` or ``tf32`` (fp32 matmuls are
    assumed to run on TF32 tensor cores, as ``precision=32-true`` sets up on GPUs).

    Raises:
        ConfigError: an unknown precision.
    """
    p = str(precision)
    if p.startswith("bf16"):
        return "bf16"
    if p.startswith("16"):
        return "fp16"
    if p.startswith("32") or p == "64-true":
        return "tf32"
    raise ConfigError(f"trainer.precision={precision!r}: use 32-true, 16-mixed, bf16-mixed or bf16-true.")


def gpu_peak_flops(gpu: str | float, dtype: str) -> float:
    """Peak FLOP/s of one device: a name from :data:`GPU_PEAK_FLOPS` (case-insensitive) or a number.

    Raises:
        ConfigError: an unknown GPU name.
    """
    if isinstance(gpu, (int, float)):
        return float(gpu)
    table = GPU_PEAK_FLOPS.get(str(gpu).upper())
    if table is None:
        raise ConfigError(
            f"Unknown GPU {gpu!r}: known are {sorted(GPU_PEAK_FLOPS)}; or give the peak FLOP/s per device "
            "as a number (e.g. 989e12)."
        )
    return table[dtype]


def measure_cpu_matmul_flops(
    n: int = 1024, dtype: torch.dtype = torch.float32, repeats: int = 8, budget_s: float = 0.5
) -> float:
    """Peak FLOP/s of this CPU for dense square matmuls of ``dtype`` with the current thread count: the best
    of ``repeats`` timed ``torch.mm`` calls (2·n³ FLOPs each), after one warm-up.

    The size grows from 128 by doubling up to ``n`` while ``repeats`` products still fit in ``budget_s``:
    a CPU without bf16 matrix units multiplies bf16 at under 1 GFLOP/s, where nine 1024² products took about
    45 s of every bf16 run's start-up; fp32 reaches ``n`` = 1024 in well under a second. The figure is
    measured once per process for a (dtype, thread count, size) and reused by later runs."""
    return _measure_cpu_matmul_flops(n, dtype, repeats, budget_s, torch.get_num_threads())


@functools.cache
def _measure_cpu_matmul_flops(
    n: int, dtype: torch.dtype, repeats: int, budget_s: float, threads: int
) -> float:
    size = min(128, n)
    while True:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        t0 = time.perf_counter()
        torch.mm(a, b)  # the warm-up, and the probe that decides whether to grow
        took = time.perf_counter() - t0
        if size >= n or 2 * took * repeats > budget_s:  # the next size costs at least twice as much
            break
        size *= 2
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def peak_flops_per_device(device: torch.device, precision: str) -> float | None:
    """Peak FLOP/s of one device for ``precision``: our dense table for A100/H100/H200 by CUDA device name,
    else Lightning's table, and a short matmul measurement on CPU (None when unknown)."""
    dtype = precision_dtype(precision)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).upper()
        for chip, table in GPU_PEAK_FLOPS.items():
            if chip in name:
                return table[dtype]
        from lightning.fabric.utilities.throughput import get_available_flops

        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": "tfloat32"}[dtype]
        return get_available_flops(device, torch_dtype)
    if device.type == "cpu":
        return measure_cpu_matmul_flops(dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    return None
