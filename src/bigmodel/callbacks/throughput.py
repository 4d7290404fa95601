"""Training throughput and model FLOPs utilisation (MFU), on Lightning's ``ThroughputMonitor``.

FLOPs per batch come from ``torch.utils.flop_counter`` (through Lightning's ``measure_flops``) on a meta-device
copy of the net, so nothing is counted by hand and no memory or compute is spent. MFU (Chowdhery et al. 2022,
PaLM, appendix B) = achieved model FLOP/s per device / peak FLOP/s per device.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import hydra
import torch
from lightning import LightningModule, Trainer
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.trainer.states import RunningStage

from bigmodel.utils.estimate_math import GPU_PEAK_FLOPS, precision_dtype

log = logging.getLogger(__name__)


def measure_cpu_matmul_flops(n: int = 1024, dtype: torch.dtype = torch.float32, repeats: int = 8) -> float:
    """Peak FLOP/s of this CPU for dense ``n x n`` matmuls of ``dtype`` with the current thread count:
    the best of ``repeats`` timed ``torch.mm`` calls (2·n³ FLOPs each), after one warm-up."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def peak_flops_per_device(device: torch.device, precision: str) -> float | None:
    """Peak FLOP/s of one device for ``precision``: our dense table for A100/H100/H200 by CUDA device name,
    else Lightning's table, and a short matmul measurement on CPU (None when unknown)."""
    dtype = precision_dtype(precision)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).upper()
        for chip, table in GPU_PEAK_FLOPS.items():
            if chip in name:
                return table[dtype]
        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": "tfloat32"}[dtype]
        return get_available_flops(device, torch_dtype)
    if device.type == "cpu":
        return measure_cpu_matmul_flops(dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    return None


def _first_tensor(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)) and batch:
        return _first_tensor(batch[0])
    return None


def _batch_size(batch: Any) -> int:
    x = _first_tensor(batch)
    return int(x.shape[0]) if x is not None else 1


def _tokens(batch: Any) -> int:
    return int(_first_tensor(batch).numel())  # type: ignore[union-attr]


def _is_token_batch(batch: Any) -> bool:
    x = _first_tensor(batch)
    return x is not None and x.ndim == 2 and not torch.is_floating_point(x)


class ThroughputMFU(ThroughputMonitor):
    """Logs, every ``trainer.log_every_n_steps`` optimizer steps once ``window_size`` batches are seen:

    - ``perf/samples_per_sec``: samples/s over all devices;
    - ``perf/tokens_per_sec``: tokens/s over all devices (batches of token ids ``(B, T)``, i.e. LMs);
    - ``perf/tflops_per_sec``: achieved model TFLOP/s (10^12 FLOP/s) per device, training FLOPs
      (forward + backward) from the flop counter;
    - ``perf/mfu``: that divided by the device's peak FLOP/s, a fraction in 0-1.

    The last values also go to ``metrics.json``.

    Args:
        peak_flops: peak FLOP/s per device; ``null`` looks it up (A100/H100/H200 table by precision, or
            Lightning's table) or, on CPU, measures a 1024x1024 matmul at start.
        window_size: batches averaged per figure.

    A module may set ``flops_per_batch`` itself (training FLOPs per device per batch); otherwise it is measured
    on the first batch from ``pl_module.hparams.net`` (and ``pl_module.frontend``), and MFU is skipped with a
    warning when that fails.
    """

    def __init__(self, peak_flops: float | None = None, window_size: int = 10) -> None:
        super().__init__(batch_size_fn=_batch_size, window_size=window_size)
        self.peak_flops = peak_flops
        self.last: dict[str, float] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        peak = self.peak_flops or peak_flops_per_device(trainer.strategy.root_device, str(trainer.precision))
        self.available_flops = peak
        for t in self._throughputs.values():
            t.available_flops = peak
        if peak:
            log.info("Peak per device for MFU: %.2f TFLOP/s (%s)", peak / 1e12, trainer.strategy.root_device)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, *_: Any) -> None:
        if self._module_has_flops is None:  # first batch
            if _is_token_batch(batch):
                self.length_fn = _tokens
            if getattr(pl_module, "flops_per_batch", None) is None:
                pl_module.flops_per_batch = measure_batch_flops(pl_module, batch)  # type: ignore[assignment]

    def _compute(self, trainer: Trainer, iter_num: int | None = None) -> None:
        stage = trainer.state.stage
        if stage != RunningStage.TRAINING or not trainer._logger_connector.should_update_logs:
            return  # flops_per_batch counts forward+backward: only training figures are meaningful
        m = self._throughputs[stage].compute()
        out = {
            "perf/samples_per_sec": m.get("samples_per_sec", m.get("device/samples_per_sec")),
            "perf/tokens_per_sec": m.get("items_per_sec", m.get("device/items_per_sec")),
            "perf/tflops_per_sec": m["device/flops_per_sec"] / 1e12 if "device/flops_per_sec" in m else None,
            "perf/mfu": m.get("device/mfu"),
        }
        out = {k: float(v) for k, v in out.items() if v is not None}
        if out:
            self.last.update(out)
            trainer._logger_connector.log_metrics(out, step=iter_num)  # type: ignore[arg-type]

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in self.last.items()})


def measure_batch_flops(pl_module: LightningModule, batch: Any) -> int | None:
    """Training FLOPs (forward + backward) of one batch on one device, counted by ``torch.utils.flop_counter``
    on a meta-device copy of ``pl_module.hparams.net`` fed a meta tensor shaped like the batch input."""
    net_cfg = getattr(pl_module, "hparams", {}).get("net")
    x = _first_tensor(batch)
    if not net_cfg or x is None:
        log.warning("ThroughputMFU: no hparams.net or input tensor; set module.flops_per_batch for MFU.")
        return None
    try:
        frontend = getattr(pl_module, "frontend", None)
        if frontend is not None:
            with torch.no_grad():
                x = frontend(x)
        with torch.device("meta"):
            net = hydra.utils.instantiate(net_cfg)
        xm = torch.empty_like(x, device="meta")
        return int(measure_flops(net, lambda: net(xm), loss_fn=lambda y: y.float().sum()))
    except Exception as e:  # a net the meta device or the counter cannot run: log without MFU
        log.warning(
            "ThroughputMFU: could not count FLOPs of %s (%s); MFU not logged.", net_cfg.get("_target_"), e
        )
        return None
