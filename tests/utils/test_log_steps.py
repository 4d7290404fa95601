"""is_logging_step: a module logs per-step values only on the steps Lightning writes."""

from __future__ import annotations

from types import SimpleNamespace

from bigmodel.utils.log_steps import is_logging_step


def _trainer(global_step, every=10, batches=100, stop=False, fast=False):
    return SimpleNamespace(
        log_every_n_steps=every,
        global_step=global_step,
        num_training_batches=batches,
        should_stop=stop,
        fast_dev_run=fast,
    )


def test_logs_on_the_interval_only():
    steps = [s for s in range(40) if is_logging_step(_trainer(s), batch_idx=s)]
    assert steps == [9, 19, 29, 39]  # global_step + 1 is a multiple of 10, as Lightning logs


def test_logs_on_stop_last_batch_and_fast_dev_run():
    assert is_logging_step(_trainer(3, stop=True), 3)
    assert is_logging_step(
        _trainer(3, batches=4), 3
    )  # an epoch shorter than the interval keeps its last loss
    assert is_logging_step(_trainer(3, fast=True), 3)
    assert not is_logging_step(_trainer(3, every=0), 3)
