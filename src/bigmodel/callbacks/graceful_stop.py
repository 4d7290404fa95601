"""SIGTERM / Ctrl-C: finish the optimizer step, save ``last.ckpt``, then stop with status ``interrupted``.

A cluster's preemption, ``kill``, or a Ctrl-C otherwise loses the work since the last validation (and
Lightning's own SIGTERM handling stops without a checkpoint). Exit codes follow CONVENTIONS.md: 143 for
SIGTERM, 130 for SIGINT; :func:`bigmodel.utils.cli.entry_point` writes ``metrics.json``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L

log = logging.getLogger(__name__)

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class RunInterrupted(Exception):  # noqa: N818 - it is not an error: the run was asked to stop
    """Raised on every rank after the interrupted run saved its checkpoint.

    Attributes:
        signum: the signal received (``signal.SIGTERM`` or ``signal.SIGINT``).
        step: the global step saved.
        ckpt_path: the checkpoint written (``None`` when checkpointing is off).
        exit_code: 143 or 130.
    """

    def __init__(self, signum: int, step: int, ckpt_path: str | None) -> None:
        self.signum, self.step, self.ckpt_path = signum, step, ckpt_path
        self.exit_code = EXIT_CODES.get(signum, 128 + int(signum))
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} received: stopped after optimizer step {step}"
            + (f", saved {ckpt_path}" if ckpt_path else " (checkpointing is off: nothing saved)")
            + ". Resume with ckpt_path=last."
        )


class GracefulStop(L.Callback):
    """Catch SIGTERM and SIGINT during ``fit``; at the next optimizer-step boundary (all ranks agree
    through one all-reduce), write ``last.ckpt`` of ``trainer.checkpoint_callback``'s folder (atomically,
    via the trainer's checkpoint IO) and raise :class:`RunInterrupted`.

    A second Ctrl-C exits at once (code 130) without saving. The handlers are installed in
    ``on_train_start``, after Lightning's own (which would stop without saving), and the previous ones
    come back at the end of ``fit``. SLURM's SIGUSR1 is Lightning's (``SLURMEnvironment(auto_requeue)``):
    it saves an ``hpc_ckpt`` and requeues, see README "Preemption".
    """

    def __init__(self) -> None:
        self._signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._step_at_batch_start = -1
        self._trainer: L.Trainer | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self._signum == signal.SIGINT and signum == signal.SIGINT:
            os.write(2, b"\nSecond Ctrl-C: exiting now without saving.\n")
            self._write_interrupted_metrics()
            os._exit(130)
        if self._signum is None:
            self._signum = signum
            extra = " (Ctrl-C again to exit at once)" if signum == signal.SIGINT else ""
            # os.write: logging from a signal handler can deadlock on the handler's lock
            os.write(
                2, f"\n{signal.Signals(signum).name}: saving after this optimizer step{extra}.\n".encode()
            )

    def _write_interrupted_metrics(self) -> None:
        trainer = self._trainer
        if trainer is None:
            return
        from bigmodel.utils.run import write_metrics

        try:
            write_metrics(
                Path(trainer.default_root_dir) / "metrics.json",
                {"status": "interrupted", "step": trainer.global_step, "signal": "SIGINT", "saved": False},
            )
        except OSError:
            pass

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only
        for s in EXIT_CODES:
            self._previous[s] = signal.signal(s, self._handler)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step == self._step_at_batch_start:
            return  # mid gradient accumulation: the optimizer step is not done yet
        asked = trainer.strategy.reduce_boolean_decision(self._signum is not None, all=False)
        if not asked:
            return
        signum = self._signum
        if signum is None:  # another rank got it: broadcast which one
            signum = signal.SIGTERM
        signum = trainer.strategy.broadcast(signum, src=0) if trainer.world_size > 1 else signum
        ckpt = trainer.checkpoint_callback
        path = None
        if ckpt is not None and ckpt.dirpath:
            path = str(Path(ckpt.dirpath) / f"{ckpt.CHECKPOINT_NAME_LAST}{ckpt.FILE_EXTENSION}")
            trainer.save_checkpoint(path)  # all ranks take part; rank 0 writes, atomically
        raise RunInterrupted(signum, trainer.global_step, path)
