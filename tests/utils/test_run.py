import json
import os
import time

import pytest
import torch

from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import resolve_ckpt_path, write_metrics


def test_resolve_last_picks_newest(tmp_path):
    paths = []
    for name in ("a", "b"):
        p = tmp_path / "exp" / "runs" / name / "checkpoints" / "last.ckpt"
        p.parent.mkdir(parents=True)
        torch.save({"epoch": 0}, p)  # a real (zip) checkpoint file: unreadable ones are skipped
        paths.append(p)
    os.utime(paths[0], (time.time() + 10, time.time() + 10))
    assert resolve_ckpt_path("last", tmp_path, "exp") == str(paths[0])
    assert resolve_ckpt_path(None, tmp_path, "exp") is None
    with pytest.raises(ConfigError, match="other"):
        resolve_ckpt_path("last", tmp_path, "other")


def test_write_metrics_is_flat_json(tmp_path):
    write_metrics(tmp_path / "metrics.json", {"val/acc": torch.tensor(0.5), "x": float("nan"), "s": "a"})
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data == {"s": "a", "status": "completed", "val/acc": 0.5, "x": "nan"}
