"""(b) start-up, (c) data loading against model consumption, (d) DDP on CPU, 2 processes against 1."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from torch.utils.data import DataLoader

from benchmarks.parity import _template_seconds
from bigmodel.utils.resolvers import CONFIG_DIR, PROJECT_ROOT

QUIET = ["extras.print_config=false", "callbacks.rich_progress_bar=null", "callbacks.rich_model_summary=null"]


class FirstStepTimer(L.Callback):
    """Writes ``time.time()`` after the first optimizer step to the file named by ``$BENCH_FIRST_STEP_FILE``."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        path = os.environ.get("BENCH_FIRST_STEP_FILE")
        if path and trainer.global_step == 1:
            Path(path).write_text(repr(time.time()))


class FitTimer(L.Callback):
    """Rank 0 writes ``{"samples": ..., "seconds": ...}`` of training batches 3..end (all processes' samples,
    validation excluded) to the file named by ``$BENCH_FIT_FILE``."""

    def __init__(self, skip: int = 3) -> None:
        self.skip, self.t0, self.samples, self.seconds = skip, 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.skip:
            self.seconds += time.perf_counter() - self.t0
            self.samples += len(batch[1]) * trainer.world_size

    def on_train_end(self, trainer, pl_module) -> None:
        path = os.environ.get("BENCH_FIT_FILE")
        if path and trainer.is_global_zero:
            Path(path).write_text(json.dumps({"samples": self.samples, "seconds": self.seconds}))


def startup(repeats: int, log_dir: Path) -> dict[str, Any]:
    """Wall seconds from ``make train`` (default experiment) to its first optimizer step, and the floor
    ``python -c "import lightning, torch"``; medians of ``repeats``."""
    to_step, floor = [], []
    for _ in range(repeats):
        t0 = time.time()
        subprocess.run([sys.executable, "-c", "import lightning, torch"], check=True)
        floor.append(time.time() - t0)
        with tempfile.NamedTemporaryFile(suffix=".t", delete=False) as f:
            mark = f.name
        env = {**os.environ, "BENCH_FIRST_STEP_FILE": mark}
        args = [
            *QUIET,
            "+trainer.max_steps=1",
            "test=false",
            "logger=csv",
            f"paths.log_dir={log_dir}",
            "callbacks.model_checkpoint=null",
            "callbacks.early_stopping=null",
            "+callbacks.first_step._target_=benchmarks.system.FirstStepTimer",
        ]
        t0 = time.time()
        subprocess.run(
            ["make", "--no-print-directory", "train", *args],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        to_step.append(float(Path(mark).read_text()) - t0)
        os.unlink(mark)
    s, f = statistics.median(to_step), statistics.median(floor)
    return {"make_train_to_first_step_s": s, "import_floor_s": f, "overhead_s": s - f}


def _compose(experiment: str, overrides: list[str] | None = None):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"experiment={experiment}", *(overrides or [])])


def dataloading(experiment: str, data_dir: str, epochs: int = 3) -> dict[str, Any]:
    """Samples/s of the experiment's training DataLoader (as configured) against samples/s the training
    step consumes (the template's step on the same batches, pre-loaded in memory)."""
    cfg = _compose(experiment, [f"paths.data_dir={data_dir}"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    loader = dm.train_dataloader()
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            n += len(batch[1])
    load_sps = n / (time.perf_counter() - t0)
    batches = list(loader)
    module = hydra.utils.instantiate(cfg.model, _recursive_=False)
    warmup, steps = 3, max(5, len(batches) - 3)
    in_memory = DataLoader((batches * 2)[: warmup + steps], batch_size=None)  # yields the stored batches
    sec = _template_seconds(module, in_memory, warmup, steps)
    consume_sps = len(batches[0][1]) / sec
    return {
        "experiment": experiment,
        "loader_samples_per_sec": load_sps,
        "model_samples_per_sec": consume_sps,
        "ratio": load_sps / consume_sps,
    }


def ddp(log_dir: Path, epochs: int = 3, threads: int = 1) -> dict[str, Any]:
    """Training samples/s (all processes; time inside training steps, validation excluded) of digits_mlp
    with ``trainer=ddp_cpu`` (2 processes, gloo; Lightning gives each cores/2 threads) against ``trainer=cpu``
    (1 process with ``threads`` threads)."""
    out: dict[str, Any] = {"experiment": "digits_mlp", "epochs": epochs, "one_process_threads": threads}
    for name, trainer in (("one_process", "trainer=cpu"), ("ddp_2_processes", "trainer=ddp_cpu")):
        run_dir = log_dir / f"ddp_{name}"
        mark = log_dir / f"ddp_{name}.json"
        args = [
            *QUIET,
            "experiment=digits_mlp",
            trainer,
            f"trainer.max_epochs={epochs}",
            "test=false",
            "logger=csv",
            "callbacks.early_stopping=null",
            f"hydra.run.dir={run_dir}",
            f"paths.log_dir={log_dir}",
            "+callbacks.fit_timer._target_=benchmarks.system.FitTimer",
        ]
        env = {**os.environ, "BENCH_FIT_FILE": str(mark)}
        if name == "one_process":
            env["OMP_NUM_THREADS"] = str(threads)
        subprocess.run(
            [sys.executable, "-m", "bigmodel.train", *args],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            env=env,
        )
        m = json.loads(mark.read_text())
        out[f"{name}_samples_per_sec"] = m["samples"] / m["seconds"]
    out["ratio"] = out["ddp_2_processes_samples_per_sec"] / out["one_process_samples_per_sec"]
    return out
