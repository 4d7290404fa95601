"""Row (k) of ``make bench``: CPU MFU of ``gpt_nano`` (the real ``LanguageModelModule``) with
``model.compile=true`` against eager, the two interleaved (ABAB), each round against a fresh 1024x1024
fp32 matmul peak at the same thread count. The compiled module's first steps (compilation) are warm-up."""

from __future__ import annotations

import copy
import statistics
from typing import Any

import hydra
import torch
from lightning.fabric.utilities.throughput import measure_flops
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.parity import _template_seconds
from bigmodel.callbacks.peak_flops import measure_cpu_matmul_flops


def compile_mfu(
    lm_cfg: dict[str, Any], batch: int = 4, rounds: int = 2, warmup: int = 3, steps: int = 3
) -> dict[str, Any]:
    """``lm_cfg``: a LanguageModelModule config (``benchmarks.run._lm_cfg``)."""
    net_cfg = lm_cfg["net"]
    n = batch * (warmup + steps)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, net_cfg["vocab_size"], (n, net_cfg["block_size"] + 1), generator=g)
    data = TensorDataset(idx[:, :-1].contiguous(), idx[:, 1:].contiguous())
    loader = DataLoader([data[i : i + batch] for i in range(0, n, batch)], batch_size=None)

    def module(compiled: bool):
        torch.manual_seed(0)
        m = hydra.utils.instantiate({**lm_cfg, "compile": compiled}, _recursive_=False)
        m.configure_model()
        return m

    ref = module(False)
    x0 = data[:batch][0].to("meta")
    meta = copy.deepcopy(ref.net).to("meta")
    flops = measure_flops(meta, lambda: meta(x0), loss_fn=lambda y: y.float().sum())
    mfu: dict[str, list[float]] = {"eager": [], "compiled": []}
    ms: dict[str, list[float]] = {"eager": [], "compiled": []}
    peaks = []
    for _ in range(rounds):
        peak = measure_cpu_matmul_flops()
        peaks.append(peak)
        for name in ("eager", "compiled"):
            t = _template_seconds(module(name == "compiled"), loader, warmup, steps)
            ms[name].append(1e3 * t)
            mfu[name].append(flops / t / peak)
    return {
        "net": "gpt_nano",
        "batch_size": batch,
        "tokens_per_step": batch * net_cfg["block_size"],
        "rounds": rounds,
        "steps_per_round": steps,
        "threads": torch.get_num_threads(),
        "train_flops_per_step": flops,
        "cpu_matmul_peak_flops": statistics.median(peaks),
        "eager_step_ms": statistics.median(ms["eager"]),
        "compiled_step_ms": statistics.median(ms["compiled"]),
        "mfu_eager": statistics.median(mfu["eager"]),
        "mfu_compiled": statistics.median(mfu["compiled"]),
        "compiled_speedup": statistics.median(
            e / c for e, c in zip(ms["eager"], ms["compiled"], strict=True)
        ),
        "mfu_eager_rounds": mfu["eager"],
        "mfu_compiled_rounds": mfu["compiled"],
    }
