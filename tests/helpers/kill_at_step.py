"""A test-only callback: ``kill -9`` its own process right after optimizer step ``step`` (a crash that no
handler sees, at a step the test picks), e.g. ``+callbacks.kill._target_=tests.helpers.kill_at_step.KillAtStep
+callbacks.kill.step=13``."""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning as L


class KillAtStep(L.Callback):
    def __init__(self, step: int, sig: str = "SIGKILL") -> None:
        self.step, self.sig = step, getattr(signal, sig)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), self.sig)
