"""(a) parity: the template's training step (LightningModule + Trainer) against the plain PyTorch loop
(zero_grad, forward, loss, backward, step) on the same net, in-memory batches, batch size and threads;
(e) CPU MFU of the same steps against a measured matmul peak."""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.throughput import measure_flops
from torch.utils.data import DataLoader, TensorDataset

from bigmodel.callbacks.peak_flops import measure_cpu_matmul_flops
from bigmodel.models.classification import ClassificationModule

ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}


class _StepTimer(L.Callback):
    """Times batches ``warmup .. end`` (from the start of batch ``warmup`` to the end of the last optimizer step)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1 = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.t1 = time.perf_counter()


def _template_seconds(module: L.LightningModule, loader: DataLoader, warmup: int, steps: int) -> float:
    timer = _StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=loader)
    return (timer.t1 - timer.t0) / steps


def _plain_seconds(net: torch.nn.Module, loader: DataLoader, warmup: int, steps: int, lm: bool) -> float:
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    t0 = 0.0
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            t0 = time.perf_counter()
        opt.zero_grad()
        out = net(x)
        loss = F.cross_entropy(out.view(-1, out.size(-1)), y.reshape(-1)) if lm else F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        if i + 1 == warmup + steps:
            break
    return (time.perf_counter() - t0) / steps


def parity(
    name: str, net_cfg: dict[str, Any], batch: int, rounds: int, warmup: int, steps: int
) -> dict[str, Any]:
    """Alternate template and plain loop ``rounds`` times; median ratio of throughputs (template / plain).

    ``net_cfg`` is a net config (classifier on 8x8 images), or a whole LanguageModelModule config (has ``net``).
    """
    lm = "net" in net_cfg
    model_cfg, net_cfg = (net_cfg, net_cfg["net"]) if lm else (None, net_cfg)
    n = batch * (warmup + steps)
    g = torch.Generator().manual_seed(0)
    if lm:
        idx = torch.randint(0, net_cfg["vocab_size"], (n, net_cfg["block_size"] + 1), generator=g)
        data = TensorDataset(idx[:, :-1].contiguous(), idx[:, 1:].contiguous())
    else:
        data = TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))
    # pre-collated batches, so neither loop pays for per-sample indexing and collation
    batches = [data[i : i + batch] for i in range(0, n, batch)]
    loader = DataLoader(batches, batch_size=None)

    def template() -> L.LightningModule:
        torch.manual_seed(0)
        if lm:
            module = hydra.utils.instantiate(model_cfg, _recursive_=False)
            module.configure_model()  # builds the net (vocab/block sizes are set, no DataModule needed)
            return module
        return ClassificationModule(net=net_cfg, optimizer=ADAMW, num_classes=10)

    ref = template()
    x0 = data[:batch][0].to("meta")
    meta = copy.deepcopy(ref.net).to("meta")
    flops = measure_flops(meta, lambda: meta(x0), loss_fn=lambda y: y.float().sum())
    t_tpl, t_plain = [], []
    for _ in range(rounds):
        t_tpl.append(_template_seconds(template(), loader, warmup, steps))
        t_plain.append(_plain_seconds(copy.deepcopy(ref.net), loader, warmup, steps, lm))
    ratios = [p / t for t, p in zip(t_tpl, t_plain, strict=True)]
    peak = measure_cpu_matmul_flops()
    return {
        "net": name,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps_per_round": steps,
        "template_step_ms": 1e3 * statistics.median(t_tpl),
        "plain_step_ms": 1e3 * statistics.median(t_plain),
        "parity_ratio": statistics.median(ratios),
        "parity_ratios": ratios,
        "train_flops_per_step": flops,
        "cpu_matmul_peak_flops": peak,
        "mfu_template": flops / statistics.median(t_tpl) / peak,
        "mfu_plain": flops / statistics.median(t_plain) / peak,
    }
