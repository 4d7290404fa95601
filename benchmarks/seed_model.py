"""Row (i) of ``make bench``: the seed's own "big model", ``big_mlp`` 1000 -> 10000 -> 10000 -> 10
(110,120,010 parameters), trained with SGD (lr 0.01, momentum 0.9) through ``bigmodel.train.train`` with
the default callbacks and CSV logger, against the same plain PyTorch loop, in the seed's shapes (inputs
``(B, 1000)``, 10 classes). Checkpointing is off here only because each checkpoint of this model is about
0.9 GB (weights + momentum) and is written outside the timed steps anyway."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from benchmarks import harness as h

PARAMS = 1000 * 10000 + 10000 + 10000 * 10000 + 10000 + 10000 * 10 + 10  # 110,120,010


def seed_overrides(batch: int, warmup: int, steps: int) -> list[str]:
    return [
        "experiment=digits_mlp",
        "trainer=cpu",
        *h.data_overrides(batch, warmup + steps + 1, [1000]),
        "model.net.in_features=1000",
        "model.net.hidden_sizes=[10000,10000]",
        "model.net.dropout=0.0",
        "model.optimizer._target_=torch.optim.SGD",
        "model.optimizer.lr=0.01",
        "+model.optimizer.momentum=0.9",
        "model.optimizer.weight_decay=0.0",
        "model.scheduler=null",
        "callbacks.model_checkpoint=null",
    ]


def seed_model(batch: int = 64, rounds: int = 3, warmup: int = 2, steps: int = 4) -> dict[str, Any]:
    """Template vs plain loop, ABAB over ``rounds``; parity = median of per-round plain/template ratios."""
    ov = seed_overrides(batch, warmup, steps)
    tpl, plain = [], []
    for _ in range(rounds):
        tpl.append(h.template_seconds(ov, warmup, steps)["step_s"])
        plain.append(h.plain_seconds(ov, warmup, steps))
    return {
        "net": "big_mlp 1000-10000-10000-10",
        "params": PARAMS,
        "optimizer": "SGD lr 0.01 momentum 0.9",
        "batch_size": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "threads": torch.get_num_threads(),
        "template_step_ms": 1e3 * statistics.median(tpl),
        "plain_step_ms": 1e3 * statistics.median(plain),
        "parity_ratio": statistics.median(p / t for p, t in zip(plain, tpl, strict=True)),
        "template_step_ms_rounds": [1e3 * t for t in tpl],
        "plain_step_ms_rounds": [1e3 * t for t in plain],
    }
