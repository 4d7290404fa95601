"""``make gpu-check`` / ``python -m benchmarks.gpu_check``: the GPU acceptance run of issue #17, one run of
at most about 8 minutes on one GPU, then ``logs/gpu_check/gpu_check_<timestamp>.json`` and a table:

1. ``lm``: GPT-350M (``net=gpt2_medium``, GPT-2 vocabulary, 1,024 tokens) in ``bf16-mixed`` with
   ``model.compile=true``: tokens/s and MFU from the ``perf/*`` figures of the throughput callback, against
   the GPU's dense bf16 peak (``bigmodel.callbacks.peak_flops``: H100 SXM and H200 989.4 TFLOP/s dense
   bf16, A100 312; source: NVIDIA's H100/H200 and A100 datasheets, the dense, not the 2:4-sparse, figures);
2. ``memory``: ``make estimate``'s per-device memory for the same config against
   ``torch.cuda.max_memory_allocated`` of that run, within 10%;
3. ``fsdp``: ``trainer=fsdp`` with activation checkpointing on 1 GPU completes; its sharded ``last.ckpt``
   evaluates under FSDP and, consolidated (Lightning's ``consolidate_checkpoint`` CLI), on a single device,
   with the same ``test/loss`` (to 1e-4 relative: the logits of both evaluations are the same net's);
4. ``deepspeed``: ``trainer=deepspeed_stage_2`` completes, if deepspeed is installed (else skipped);
5. ``pytest``: every ``gpu``-marked test, in one pytest call.

``--dry-run`` runs on CPU in seconds (a fast test of ``make test``): every config composes, the LM check
trains 2 steps of ``gpt_nano`` in-process with the same callbacks and reads its figures back, the memory
comparison runs on them, and the other checks print the commands they would run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from bigmodel.utils.resolvers import PROJECT_ROOT


class RandomTokens(L.LightningDataModule):
    """Random token batches ``(x, y)``, both ``(batch_size, block_size)`` int64, so the check needs no corpus
    (the GPU machine may have none). Extra keyword arguments (the rest of ``data``) are ignored."""

    def __init__(
        self, batch_size: int, block_size: int, vocab_size: int = 50257, n_batches: int = 64, **_: Any
    ):
        super().__init__()
        self.batch_size, self.block_size, self.vocab_size, self.n = (
            batch_size,
            block_size,
            vocab_size,
            n_batches,
        )

    def _loader(self, n: int) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        batches = []
        for _ in range(n):
            t = torch.randint(0, self.vocab_size, (self.batch_size, self.block_size + 1), generator=g)
            batches.append((t[:, :-1].contiguous(), t[:, 1:].contiguous()))
        return DataLoader(batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.n)

    def val_dataloader(self) -> DataLoader:
        return self._loader(2)

    def test_dataloader(self) -> DataLoader:
        return self._loader(2)


class PeakMemory(L.Callback):
    """Writes ``torch.cuda.max_memory_allocated`` (bytes, 0 on CPU) of the training to
    ``<trainer.default_root_dir>/peak_memory.json`` at the end of fit."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
        if trainer.is_global_zero:
            Path(trainer.default_root_dir, "peak_memory.json").write_text(
                json.dumps({"max_memory_allocated": peak})
            )


def lm_overrides(dry: bool, steps: int) -> list[str]:
    """The LM run: gpt2_medium bf16-mixed compiled on one GPU, or gpt_nano eager on CPU for --dry-run."""
    net, block, batch, vocab = ("gpt_nano", 32, 2, 65) if dry else ("gpt2_medium", 1024, 8, 50257)
    return [
        "experiment=shakespeare_char_gpt",
        f"net={net}",
        "data._target_=benchmarks.gpu_check.RandomTokens",
        f"data.batch_size={batch}",
        f"data.block_size={block}",
        f"+data.vocab_size={vocab}",
        f"+data.n_batches={steps + 1}",
        "trainer=cpu" if dry else "trainer=gpu",
        "precision=bf16-mixed",
        f"model.compile={'false' if dry else 'true'}",
        f"++trainer.max_steps={steps}",
        "trainer.log_every_n_steps=1" if dry else "trainer.log_every_n_steps=10",
        "callbacks.throughput.window_size=2",
        "++trainer.limit_val_batches=0",
        "++trainer.num_sanity_val_steps=0",
        "callbacks.model_checkpoint=null",
        "callbacks.early_stopping=null",
        "callbacks.media_text=null",
        "+callbacks.peak_memory._target_=benchmarks.gpu_check.PeakMemory",
        "model.scheduler=null",
        "test=false",
        "extras.print_config=false",
        "logger=csv",
    ]


def _compose(config: str, overrides: list[str], out: Path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from bigmodel.utils.resolvers import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config, overrides=overrides, return_hydra_config=True)
    out.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.job.num = 0
        cfg.paths.log_dir = str(out / "logs")
    HydraConfig.instance().set_config(cfg)
    return cfg


def _cli(module: str, overrides: list[str], run_dir: Path, timeout: float) -> dict[str, Any]:
    """``python -m <module> <overrides> hydra.run.dir=<run_dir>``; its metrics.json (or the tail of its log)."""
    cmd = [sys.executable, "-m", module, *overrides, f"hydra.run.dir={run_dir}"]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    res: dict[str, Any] = {"rc": p.returncode, "wall_s": round(time.perf_counter() - t, 1)}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        res["metrics"] = json.loads(metrics.read_text())
    if p.returncode:
        res["log_tail"] = (p.stdout + p.stderr)[-2000:]
    return res


def check_lm_and_memory(dry: bool, out: Path, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    ov = lm_overrides(dry, steps)
    run_dir = out / "lm"
    if dry:  # in-process on CPU: the same config, callbacks and read-back, in seconds
        from bigmodel.train import train

        res: dict[str, Any] = {"rc": 0, "metrics": train(_compose("train", ov, run_dir))}
    else:
        res = _cli("bigmodel.train", ov, run_dir, timeout=300)
    m = {k: float(v) if isinstance(v, torch.Tensor) else v for k, v in res.get("metrics", {}).items()}
    lm = {
        "ok": res["rc"] == 0 and "perf/tokens_per_sec" in m,
        "tokens_per_sec": m.get("perf/tokens_per_sec"),
        "tflops_per_sec": m.get("perf/tflops_per_sec"),
        "mfu": m.get("perf/mfu"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        **{k: v for k, v in res.items() if k != "metrics"},
    }
    from bigmodel.estimate import estimate

    keep = [o for o in ov if not o.startswith(("+callbacks", "test="))]
    vocab, block = (65, 32) if dry else (50257, 1024)
    est_cfg = _compose(
        "estimate", [*keep, f"estimate.vocab_size={vocab}", f"estimate.seq_len={block}"], out / "estimate"
    )
    predicted = float(estimate(est_cfg)["device_bytes"])
    peak_file = run_dir / "peak_memory.json"
    measured = json.loads(peak_file.read_text())["max_memory_allocated"] if peak_file.is_file() else None
    ratio = measured / predicted if measured else None
    memory = {
        "ok": ratio is not None and abs(ratio - 1) <= 0.10 if not dry else peak_file.is_file(),
        "predicted_bytes": predicted,
        "measured_bytes": measured,
        "measured_over_predicted": ratio,
    }
    return lm, memory


def check_fsdp(dry: bool, out: Path) -> dict[str, Any]:
    train_ov = [
        *[
            o
            for o in lm_overrides(dry, 20)
            if not o.startswith(("trainer=", "callbacks.model_checkpoint", "model.compile"))
        ],
        "net=gpt2_small" if not dry else "net=gpt_nano",
        "trainer=fsdp",
        "trainer.devices=1",
        "trainer.strategy.activation_checkpointing=true",
    ]
    run = out / "fsdp"
    ckpt = run / "checkpoints" / "last.ckpt"
    eval_ov = ["extras.print_config=false"]  # the data config (RandomTokens) comes from the checkpoint
    if dry:
        _compose("train", train_ov, run)
        _compose(
            "eval", [f"ckpt_path={ckpt}", "trainer=fsdp", "trainer.devices=1", *eval_ov], out / "fsdp_eval"
        )
        return {"ok": True, "dry_run": "configs compose; would train, then eval sharded and consolidated"}
    res = _cli("bigmodel.train", train_ov, run, timeout=240)
    if res["rc"] or not ckpt.exists():
        return {"ok": False, **res}
    sharded = _cli(
        "bigmodel.eval", [f"ckpt_path={ckpt}", "trainer=fsdp", "trainer.devices=1", *eval_ov], out / "e1", 120
    )
    single_file = run / "last_consolidated.ckpt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning.pytorch.utilities.consolidate_checkpoint",
            str(ckpt),
            "--output_file",
            str(single_file),
        ],
        check=False,
    )
    single = _cli("bigmodel.eval", [f"ckpt_path={single_file}", "trainer=gpu", *eval_ov], out / "e2", 120)
    a = sharded.get("metrics", {}).get("test/loss")
    b = single.get("metrics", {}).get("test/loss")
    same = a is not None and b is not None and abs(a - b) <= 1e-4 * abs(a)
    return {
        "ok": bool(same),
        "train_wall_s": res["wall_s"],
        "test_loss_fsdp": a,
        "test_loss_single_device": b,
        "eval_fsdp": {k: v for k, v in sharded.items() if k != "metrics"},
        "eval_single": {k: v for k, v in single.items() if k != "metrics"},
    }


def check_deepspeed(dry: bool, out: Path) -> dict[str, Any]:
    import importlib.util

    ov = [
        *[o for o in lm_overrides(dry, 10) if not o.startswith(("trainer=", "model.compile"))],
        "net=gpt2_small" if not dry else "net=gpt_nano",
        "trainer=deepspeed_stage_2",
        "trainer.devices=1",
    ]
    if dry:
        _compose("train", ov, out / "deepspeed")
        return {"ok": True, "dry_run": "config composes"}
    if importlib.util.find_spec("deepspeed") is None:
        return {"ok": None, "skipped": "deepspeed is not installed (pip install deepspeed)"}
    res = _cli("bigmodel.train", ov, out / "deepspeed", timeout=240)
    return {"ok": res["rc"] == 0, **{k: v for k, v in res.items() if k != "metrics"}}


def check_pytest(dry: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]
    if dry:
        return {"ok": True, "dry_run": " ".join(cmd[1:])}
    p = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    return {
        "ok": p.returncode == 0,
        "rc": p.returncode,
        "summary": (p.stdout.strip().splitlines() or [""])[-1],
    }


def run(dry: bool, out_root: Path, steps: int = 60) -> dict[str, Any]:
    if not dry and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; use --dry-run on CPU.")
    started = time.time()
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dry_run": dry,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        for name, fn in (
            ("lm+memory", lambda: check_lm_and_memory(dry, work, 2 if dry else steps)),
            ("fsdp", lambda: check_fsdp(dry, work)),
            ("deepspeed", lambda: check_deepspeed(dry, work)),
            ("pytest", lambda: check_pytest(dry)),
        ):
            try:
                value = fn()
            except Exception as e:  # one failed check must not hide the others
                value = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if name == "lm+memory" and isinstance(value, tuple):
                res["lm"], res["memory"] = value
            else:
                res["lm" if name == "lm+memory" else name] = value
    res["wall_s"] = round(time.time() - started, 1)
    out_root.mkdir(parents=True, exist_ok=True)
    path = (
        out_root / f"gpu_check_{dt.datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}{'_dry' if dry else ''}.json"
    )
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    res["json"] = str(path)
    return res


def table(res: dict[str, Any]) -> Table:
    t = Table(title=f"gpu-check {res['date']} {res['device']}{' (dry run)' if res['dry_run'] else ''}")
    for c in ("check", "ok", "figures"):
        t.add_column(c)
    for name in ("lm", "memory", "fsdp", "deepspeed", "pytest"):
        v = res.get(name, {})
        figures = {k: v[k] for k in v if k not in ("ok", "log_tail")}
        t.add_row(name, str(v.get("ok")), json.dumps(figures, default=str)[:200])
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU: compose configs, run the plumbing, no GPU")
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps of the GPT-350M run")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "logs" / "gpu_check"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = run(args.dry_run, Path(args.out), args.steps)
    Console(width=160).print(table(res))
    print(f"wrote {res['json']} ({res['wall_s']:.0f} s)")
    checks = [res[k].get("ok") for k in ("lm", "memory", "fsdp", "deepspeed", "pytest") if k in res]
    sys.exit(0 if all(c is not False for c in checks) else 1)


if __name__ == "__main__":
    main()
