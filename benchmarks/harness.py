"""Shared plumbing of the overhead benchmarks (rows h-l): run the real ``bigmodel.train.train`` (the
default callbacks and CSV logger, exactly as ``make train`` builds them) on pre-collated in-memory batches,
and time it step to step with a callback added through the config, next to a plain PyTorch loop on the same
net, optimizer, scheduler and batches."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader

from bigmodel.utils.resolvers import CONFIG_DIR


class BatchesDataModule(L.LightningDataModule):
    """``n_batches`` random pre-collated ``(x, y)`` batches of shape ``(batch_size, *in_shape)`` for training
    and ``val_batches`` for validation, so no per-sample indexing or collation is timed (in either loop).
    Extra keyword arguments (the rest of the composed ``data`` config) are ignored."""

    def __init__(
        self,
        batch_size: int,
        n_batches: int,
        in_shape: list[int],
        num_classes: int,
        val_batches: int = 1,
        seed: int = 0,
        **_: Any,
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)

        def make(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
            return [
                (
                    torch.rand(batch_size, *in_shape, generator=g),
                    torch.randint(0, num_classes, (batch_size,), generator=g),
                )
                for _ in range(n)
            ]

        self.train_batches, self.val_batches = make(n_batches), make(val_batches)
        self.classes = [str(i) for i in range(num_classes)]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_batches, batch_size=None)


class StepTimer(L.Callback):
    """Wall time from the start of training batch ``warmup`` to the start of batch ``warmup + steps``: every
    hook, logger write and progress-bar refresh of those ``steps`` steps is inside, in whatever order
    Lightning runs the callbacks. Results go to the class attribute ``last`` (the instance is built by
    ``train`` from the config). With a ``SimpleProfiler`` on the trainer, ``last["profile"]`` holds its
    recorded durations (seconds per call, by action name)."""

    last: ClassVar[dict[str, Any]] = {}

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.t0 = warmup, steps, 0.0
        StepTimer.last = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.t0 = time.perf_counter()
        elif batch_idx == self.warmup + self.steps:
            StepTimer.last["step_s"] = (time.perf_counter() - self.t0) / self.steps

    def on_train_end(self, trainer, pl_module) -> None:
        durations = getattr(trainer.profiler, "recorded_durations", None)  # SimpleProfiler's public record
        if durations is not None:
            StepTimer.last["profile"] = {k: list(v) for k, v in durations.items()}
            StepTimer.last["batches"] = trainer.fit_loop.epoch_loop.batch_progress.total.completed


def compose_train(overrides: list[str], out_dir: Path) -> DictConfig:
    """``configs/train.yaml`` composed as the entry point does, every output under ``out_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir / "run")
        cfg.hydra.job.num = 0
        cfg.paths.log_dir = str(out_dir / "logs")
        cfg.paths.cache_dir = str(out_dir / "cache")
    (out_dir / "run").mkdir(parents=True, exist_ok=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def data_overrides(batch: int, n_batches: int, in_shape: list[int]) -> list[str]:
    return [
        "data._target_=benchmarks.harness.BatchesDataModule",
        f"data.batch_size={batch}",
        f"+data.n_batches={n_batches}",
        f"+data.in_shape=[{','.join(map(str, in_shape))}]",
    ]


def template_seconds(overrides: list[str], warmup: int, steps: int, quiet: bool = True) -> dict[str, Any]:
    """Seconds per training step of ``bigmodel.train.train`` under ``overrides`` (which must set the data
    through :func:`data_overrides` with ``warmup + steps + 1`` batches); returns ``StepTimer.last``."""
    from bigmodel.train import train

    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        cfg = compose_train(
            [
                *overrides,
                "extras.print_config=false",
                "test=false",
                f"++trainer.max_steps={warmup + steps + 1}",
                "trainer.max_epochs=1",
                f"+callbacks.step_timer={{_target_: benchmarks.harness.StepTimer, warmup: {warmup}, steps: {steps}}}",
            ],
            Path(tmp),
        )
        # the run's info logs and progress bar still run (they are part of the cost), only not shown
        level = logging.getLogger("bigmodel").level
        logging.getLogger("bigmodel").setLevel(logging.WARNING if quiet else level)
        try:
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                train(cfg)
        finally:
            logging.getLogger("bigmodel").setLevel(level)
            GlobalHydra.instance().clear()
    if "step_s" not in StepTimer.last:
        raise RuntimeError("StepTimer saw too few training batches: give the data warmup + steps + 1 batches")
    return dict(StepTimer.last)


def plain_parts(overrides: list[str]) -> tuple[torch.nn.Module, Any, Any, list]:
    """The net, optimizer and (optional) per-step scheduler that ``overrides`` configure, built plainly."""
    from bigmodel.models.optim import build_optimizer, build_scheduler

    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        cfg = compose_train(overrides, Path(tmp))
        torch.manual_seed(cfg.seed)
        net = hydra.utils.instantiate(cfg.model.net)
        opt = build_optimizer(cfg.model.optimizer, net.parameters())
        sched = build_scheduler(cfg.model.get("scheduler"), opt, 10_000, 1)
        dm = hydra.utils.instantiate(cfg.data)
        GlobalHydra.instance().clear()
    # an epoch-interval schedule never steps inside the timed (single-epoch) window
    scheduler = sched["scheduler"] if sched and sched.get("interval") == "step" else None
    return net, opt, scheduler, dm.train_batches


def plain_seconds(overrides: list[str], warmup: int, steps: int) -> float:
    """Seconds per step of the plain loop (zero_grad, forward, cross-entropy, backward, step, scheduler step)
    on what ``overrides`` configure, timed like :class:`StepTimer`."""
    net, opt, sched, batches = plain_parts(overrides)
    net.train()
    t0 = 0.0
    for i, (x, y) in enumerate(DataLoader(batches, batch_size=None)):
        if i == warmup:
            t0 = time.perf_counter()
        elif i == warmup + steps:
            return (time.perf_counter() - t0) / steps
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    raise RuntimeError("plain loop saw too few batches: give the data warmup + steps + 1 batches")
