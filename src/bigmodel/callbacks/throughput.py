"""Training throughput and model FLOPs utilisation (MFU), on Lightning's public ``Throughput`` meter.

FLOPs per batch come from ``torch.utils.flop_counter`` (through Lightning's ``measure_flops``) on a meta-device
copy of the net, so nothing is counted by hand and no memory or compute is spent. MFU (Chowdhery et al. 2022,
PaLM, appendix B) = achieved model FLOP/s per device / peak FLOP/s per device
(:mod:`bigmodel.callbacks.peak_flops`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import hydra
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.fabric.utilities.throughput import Throughput, measure_flops
from lightning.pytorch.trainer.states import TrainerFn

from bigmodel.callbacks.peak_flops import peak_flops_per_device

log = logging.getLogger(__name__)


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


class ThroughputMFU(Callback):
    """Logs, every ``trainer.log_every_n_steps`` optimizer steps once ``window_size`` batches are seen:

    - ``perf/samples_per_sec``: samples/s over all devices;
    - ``perf/tokens_per_sec``: tokens/s over all devices (batches of token ids ``(B, T)``, i.e. LMs);
    - ``perf/tflops_per_sec``: achieved model TFLOP/s (10^12 FLOP/s) per device, training FLOPs
      (forward + backward) from the flop counter;
    - ``perf/mfu``: that divided by the device's peak FLOP/s, a fraction in 0-1.

    They are logged with ``pl_module.log`` on the same step as ``train/*``, so the last values also reach
    ``trainer.callback_metrics`` and ``metrics.json``. Timing follows Lightning's ``ThroughputMonitor``: rank 0
    only, wall time with validation left out. The clock is read (CUDA synchronised, what makes it right) only
    after the first batch and on the logged steps; per batch the callback only counts samples from tensor
    shapes, so it adds no device sync or FLOP counting to the hot path (issue #17).

    Args:
        peak_flops: peak FLOP/s per device; ``null`` looks it up (A100/H100/H200 table by precision, or
            Lightning's table) or, on CPU, measures a 1024x1024 matmul at start.
        window_size: at least this many batches per figure (at least 2); a figure spans whole logging
            intervals (``log_every_n_steps`` optimizer steps each).

    A module may set ``flops_per_batch`` itself (training FLOPs per device per batch); otherwise it is measured
    on the first batch from ``pl_module.hparams.net`` (and ``pl_module.frontend``), and MFU is skipped with a
    warning when that fails.

    Raises:
        ValueError: ``window_size`` below 2.
    """

    def __init__(self, peak_flops: float | None = None, window_size: int = 10) -> None:
        if window_size < 2:
            raise ValueError(f"callbacks.throughput.window_size={window_size}: use 2 or more batches.")
        self.peak_flops = peak_flops
        self.window_size = window_size
        self.available_flops: float | None = None
        self._meter: Throughput | None = None
        # the training clock and counters, (re)set by on_train_start (rank 0)
        self._t0 = self._val_start = self._val_end = 0.0
        self._batches = self._samples = self._tokens = self._step_seen = self._batches_at_point = 0
        self._count_tokens: bool | None = None  # decided on the first batch

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return  # only training figures are logged (flops_per_batch counts forward + backward)
        peak = self.peak_flops or peak_flops_per_device(trainer.strategy.root_device, str(trainer.precision))
        self.available_flops = peak
        # The clock is read only on the logged steps (plus once after the first batch), so the meter holds
        # one point per logged step: enough points that a figure spans at least window_size batches.
        span = max(trainer.log_every_n_steps, 1) * max(int(trainer.accumulate_grad_batches), 1)
        points = 1 + max(1, math.ceil((self.window_size - 1) / span))
        self._meter = Throughput(available_flops=peak, world_size=trainer.world_size, window_size=points)
        if peak:
            log.info("Peak per device for MFU: %.2f TFLOP/s (%s)", peak / 1e12, trainer.strategy.root_device)

    def _now(self, trainer: Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # else perf_counter() times the kernel launches, not the kernels
        return time.perf_counter()

    @rank_zero_only
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        assert self._meter is not None
        self._meter.reset()
        self._t0 = time.perf_counter()
        self._batches = self._samples = self._tokens = self._batches_at_point = 0
        self._step_seen = trainer.global_step
        self._count_tokens = None

    @rank_zero_only
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, *_: Any) -> None:
        if self._count_tokens is None:  # first batch
            self._count_tokens = _is_token_batch(batch)
            if getattr(pl_module, "flops_per_batch", None) is None:
                pl_module.flops_per_batch = measure_batch_flops(pl_module, batch)  # type: ignore[assignment]

    @rank_zero_only
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        # Per batch only integer counts from tensor shapes: no clock, no device sync, no FLOP counting.
        self._batches += 1
        self._samples += _batch_size(batch)
        if self._count_tokens:
            self._tokens += _tokens(batch)
        if self._batches == 1:
            self._point(trainer, pl_module)  # the first point leaves out the first (warm-up) batch
            return
        # Log when Lightning logs train/*: after an optimizer step (not while accumulating gradients) whose
        # number is a multiple of log_every_n_steps, or when the run stops.
        step, every = trainer.global_step, trainer.log_every_n_steps
        if step == self._step_seen or not every:
            return
        self._step_seen = step
        if step % every and not trainer.should_stop:
            return
        self._point(trainer, pl_module)
        for name, value in self._figures().items():
            # a CPU float64 tensor: no host-to-device copy, and the value stays exact
            figure = torch.tensor(value, dtype=torch.float64)
            pl_module.log(name, figure, on_step=True, on_epoch=False, batch_size=1, rank_zero_only=True)

    def _point(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """One meter point: the (synchronised) clock and the counts so far; FLOPs of the batches since the
        previous point (the meter sums the per-point FLOPs of its window)."""
        assert self._meter is not None
        flops = getattr(pl_module, "flops_per_batch", None)
        self._meter.update(
            time=self._now(trainer) - self._t0,
            batches=self._batches,
            samples=self._samples,  # assumes every batch of the window has the same size, as Lightning does
            lengths=self._tokens if self._count_tokens else None,
            flops=flops * (self._batches - self._batches_at_point) if flops is not None else None,
        )
        self._batches_at_point = self._batches

    def _figures(self) -> dict[str, float]:
        assert self._meter is not None
        m = self._meter.compute()
        out = {
            "perf/samples_per_sec": m.get("samples_per_sec", m.get("device/samples_per_sec")),
            "perf/tokens_per_sec": m.get("items_per_sec", m.get("device/items_per_sec")),
            "perf/tflops_per_sec": m["device/flops_per_sec"] / 1e12 if "device/flops_per_sec" in m else None,
            "perf/mfu": m.get("device/mfu"),
        }
        return {k: float(v) for k, v in out.items() if v is not None}

    # Validation inside fit pauses the training clock (from its start to its last batch, as Lightning's
    # ThroughputMonitor does), so evaluation does not sink the training figures.
    @rank_zero_only
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._val_start = self._val_end = self._now(trainer)

    @rank_zero_only
    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *_: Any, **__: Any
    ) -> None:
        if _validating_inside_fit(trainer):
            self._val_end = self._now(trainer)

    @rank_zero_only
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if _validating_inside_fit(trainer):
            self._t0 += self._val_end - self._val_start


def _validating_inside_fit(trainer: Trainer) -> bool:
    return not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING


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
