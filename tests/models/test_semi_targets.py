"""Slow: FixMatch beats its supervised baseline on the same few labels (make test-full; ~70 min of CPU).

The gains are the issue's targets for MNIST (>= 0.95) and spoken digits (+10 points); SST-2 has no target
there, so its test asks for a gain of at least one point (measured +1.8, README "Few labels")."""

from __future__ import annotations

import pytest

from bigmodel.train import train
from tests.conftest import QUIET

pytestmark = pytest.mark.slow


def _test_acc(make_cfg, experiment: str, *overrides: str) -> float:
    return float(train(make_cfg([f"experiment={experiment}", *QUIET, *overrides]))["test/acc"])


@pytest.mark.parametrize(
    ("semi", "baseline", "min_gain", "min_acc", "overrides"),
    [
        # MNIST's target includes its time (<= 15 min of make train), so its max_time cap stays
        ("mnist_fixmatch_100", "mnist_supervised_baseline", 0.02, 0.95, []),
        # measured 2026-12-02: 0.8833 vs 0.7633 (+12.0) with speed perturbation + distribution alignment
        # (no time target: all steps run even when xdist shares the cores, so the result is the seeded one)
        ("spoken_digits_fixmatch", "spoken_digits_supervised_baseline", 0.10, 0.0, ["trainer.max_time=null"]),
        # measured 2026-12-02: 0.7993 vs 0.7810 (+1.8), pretrained MiniLM in both
        ("sst2_fixmatch_200", "sst2_supervised_baseline", 0.01, 0.0, ["trainer.max_time=null"]),
    ],
)
def test_fixmatch_gain_over_the_supervised_baseline(
    make_cfg, shared_data, semi, baseline, min_gain, min_acc, overrides
):
    base = _test_acc(make_cfg, baseline)
    acc = _test_acc(make_cfg, semi, *overrides)
    assert acc >= base + min_gain, f"{semi} test/acc {acc:.4f} vs {baseline} {base:.4f}"
    assert acc >= min_acc
