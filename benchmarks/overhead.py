"""Rows (h), (j) and (l) of ``make bench``: the template's per-step overhead under the default callbacks and
CSV logger (what ``make train experiment=digits_mlp`` runs), against a plain PyTorch loop and against
Lightning's own loop floor, plus a per-hook profile of one training step.

- (h) default-callback parity: ``bigmodel.train.train`` vs the plain loop, step-to-step time, ABAB rounds;
- (j) fixed overhead: template - plain (ms/step, median of paired rounds), and Lightning's floor - plain,
  the floor being a bare ``Trainer`` (no callbacks, no logger, no progress bar or checkpointing) fitting a
  module whose ``training_step`` only returns the loss;
- (l) profile: Lightning's ``SimpleProfiler`` (``Trainer(profiler=...)``) on the same run, mean ms per
  training step of every action that runs once or more per step.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmarks import harness as h


class _LossOnly(L.LightningModule):
    """The floor module: the same net and optimizer, a ``training_step`` that returns only the loss."""

    def __init__(self, net: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any) -> None:
        super().__init__()
        self.net, self._opt, self._sched = net, opt, sched

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        if self._sched is None:
            return self._opt
        return {"optimizer": self._opt, "lr_scheduler": {"scheduler": self._sched, "interval": "step"}}


def floor_seconds(overrides: list[str], warmup: int, steps: int) -> float:
    """Seconds per step of Lightning's bare loop on the net/optimizer/scheduler ``overrides`` configure."""
    net, opt, sched, batches = h.plain_parts(overrides)
    timer = h.StepTimer(warmup, steps)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(_LossOnly(net, opt, sched), train_dataloaders=DataLoader(batches, batch_size=None))
    return h.StepTimer.last["step_s"]


def experiment_overrides(batch: int, warmup: int, steps: int, experiment: str = "digits_mlp") -> list[str]:
    return [
        f"experiment={experiment}",
        "trainer=cpu",
        *h.data_overrides(batch, warmup + steps + 1, [1, 8, 8]),
    ]


def overhead(batch: int = 64, rounds: int = 5, warmup: int = 10, steps: int = 200) -> dict[str, Any]:
    """Template (default callbacks + CSV logger), Lightning floor and plain loop, interleaved per round."""
    ov = experiment_overrides(batch, warmup, steps)
    tpl, floor, plain = [], [], []
    for _ in range(rounds):
        tpl.append(h.template_seconds(ov, warmup, steps)["step_s"])
        plain.append(h.plain_seconds(ov, warmup, steps))
        floor.append(floor_seconds(ov, warmup, steps))
    ms = lambda v: 1e3 * statistics.median(v)  # noqa: E731
    return {
        "net": "big_mlp",
        "experiment": "digits_mlp",
        "batch_size": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "threads": torch.get_num_threads(),
        "template_step_ms": ms(tpl),
        "floor_step_ms": ms(floor),
        "plain_step_ms": ms(plain),
        "parity_ratio": statistics.median(p / t for p, t in zip(plain, tpl, strict=True)),
        "floor_parity_ratio": statistics.median(p / f for p, f in zip(plain, floor, strict=True)),
        # paired per round (same load), then the median
        "overhead_ms": 1e3 * statistics.median(t - p for t, p in zip(tpl, plain, strict=True)),
        "floor_overhead_ms": 1e3 * statistics.median(f - p for f, p in zip(floor, plain, strict=True)),
        "above_floor_ms": 1e3 * statistics.median(t - f for t, f in zip(tpl, floor, strict=True)),
        "template_step_ms_rounds": [1e3 * t for t in tpl],
        "floor_step_ms_rounds": [1e3 * t for t in floor],
        "plain_step_ms_rounds": [1e3 * t for t in plain],
    }


def profile(batch: int = 64, warmup: int = 10, steps: int = 200, top: int = 12) -> dict[str, Any]:
    """Per-hook breakdown of the template's training step under ``SimpleProfiler``: ms per training step
    (median time per call x calls per batch) of each action run at least once per batch. Actions nest:
    ``run_training_batch`` holds ``optimizer_step``, which holds ``training_step`` and ``backward``."""
    ov = [
        *experiment_overrides(batch, warmup, steps),
        # its report goes to a file in the (temporary) run dir, not the console
        "+trainer.profiler={_target_: lightning.pytorch.profilers.SimpleProfiler, dirpath: '${paths.output_dir}', filename: profile}",
    ]
    t = time.perf_counter()
    rec = h.template_seconds(ov, warmup, steps)
    n = rec["batches"]
    # median per call x calls per batch: the first batch's one-off work (FLOP counting) is left out
    per_step = {
        re.sub(r"\{.*\}", "", name): 1e3 * statistics.median(d) * len(d) / n
        for name, d in rec["profile"].items()
        if len(d) >= n and name != "run_training_epoch"
    }
    rows = sorted(per_step.items(), key=lambda kv: -kv[1])
    return {
        "batch_size": batch,
        "batches": n,
        "step_ms_profiled": 1e3 * rec["step_s"],
        "wall_s": time.perf_counter() - t,
        "hooks_ms_per_step": dict(rows[:top]),
        "others_ms_per_step": sum(v for _, v in rows[top:]),
    }
