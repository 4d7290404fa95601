"""Slow: FixMatch beats its supervised baseline on the same few labels (make test-full; ~35 min of CPU)."""

from __future__ import annotations

import pytest

from bigmodel.train import train
from tests.conftest import QUIET

pytestmark = pytest.mark.slow


def _test_acc(make_cfg, experiment: str) -> float:
    return float(train(make_cfg([f"experiment={experiment}", *QUIET]))["test/acc"])


@pytest.mark.parametrize(
    ("semi", "baseline", "min_gain", "min_acc"),
    [
        ("mnist_fixmatch_100", "mnist_supervised_baseline", 0.02, 0.95),
        pytest.param(
            "spoken_digits_fixmatch",
            "spoken_digits_supervised_baseline",
            0.10,
            0.0,
            # the target; measured 2026-12-01: 0.820 vs 0.803 under load, and 0.780 vs 0.763 on the
            # quiet machine with all 1,480 steps run (+1.7 points both times; val/acc flat from step ~330)
            marks=pytest.mark.xfail(
                reason="+10 points not reached: FixMatch plateaus at +1.7 (README, Few labels)", strict=False
            ),
        ),
    ],
)
def test_fixmatch_gain_over_the_supervised_baseline(make_cfg, shared_data, semi, baseline, min_gain, min_acc):
    base = _test_acc(make_cfg, baseline)
    acc = _test_acc(make_cfg, semi)
    assert acc >= base + min_gain, f"{semi} test/acc {acc:.4f} vs {baseline} {base:.4f}"
    assert acc >= min_acc
