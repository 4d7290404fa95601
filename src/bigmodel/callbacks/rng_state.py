"""Carry the RNG states of python, numpy and torch (CPU and CUDA), per rank, in every checkpoint.

Lightning saves model, optimizer, scheduler, loop counters and callback states, but not the RNGs: after a
resume, dropout (and any random augmentation in the main process) draws other numbers than the
uninterrupted run would have, so the weights diverge. This callback is what makes a resumed run
bit-for-bit the uninterrupted one (with ``trainer.deterministic=true``; CUDA kernels may still differ).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch

log = logging.getLogger(__name__)


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors and plain data (``torch.load(weights_only=True)`` reads them)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    return {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Set this process's RNGs from :func:`capture_rng`'s output."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


class RNGState(L.Callback):
    """Saves every rank's RNG states in the checkpoint (``state_dict``, gathered to rank 0 under DDP) and
    restores this rank's just before the first training batch after a resume.

    Why then and not at load time: between loading and that batch Lightning runs the sanity check and
    builds loaders, which the uninterrupted run did elsewhere. The state is captured at save time, i.e.
    after the last trained batch (or validation), and nothing but the next training batch draws from it
    in the uninterrupted run (every loader seeds its workers from its own generator, see
    :class:`bigmodel.data.base.BaseDataModule`).

    Data-loader workers (``data.num_workers > 0``) restart their RNG streams at a resume; with random
    augmentation in workers the resumed run is equivalent, not identical.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return "RNGState"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._world_size, self._rank = trainer.world_size, trainer.global_rank

    def state_dict(self) -> dict[str, Any]:
        mine = capture_rng()
        import torch.distributed as dist

        if getattr(self, "_world_size", 1) > 1 and dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, mine)  # every rank saves a checkpoint together
            return {"ranks": gathered}
        return {"ranks": [mine]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        ranks = state_dict.get("ranks") or []
        rank = getattr(self, "_rank", 0)
        if len(ranks) != getattr(self, "_world_size", 1):
            log.warning(
                "The checkpoint holds RNG states of %d rank(s), this run has %d: the RNGs are not restored "
                "(the resumed run is equivalent, not identical).", len(ranks), getattr(self, "_world_size", 1),
            )  # fmt: skip
            return
        self._pending = ranks[rank]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._pending is not None:
            restore_rng(self._pending)
            self._pending = None
