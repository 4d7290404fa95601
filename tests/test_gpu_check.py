"""benchmarks/gpu_check.py --dry-run: the GPU acceptance script's configs compose and its plumbing runs on CPU."""

from __future__ import annotations

import json

from benchmarks import gpu_check


def test_gpu_check_dry_run(tmp_path):
    res = gpu_check.run(dry=True, out_root=tmp_path)
    for name in ("lm", "memory", "fsdp", "deepspeed", "pytest"):
        assert res[name]["ok"] is True, (name, res[name])
    assert res["lm"]["tokens_per_sec"] > 0  # the throughput callback's figures were read back
    assert res["memory"]["predicted_bytes"] > 0  # make estimate ran on the same config
    written = json.loads(open(res["json"]).read())
    assert written["dry_run"] is True and "-m gpu" in written["pytest"]["dry_run"]
    assert list(tmp_path.iterdir()) == [tmp_path / res["json"].split("/")[-1]]  # only the JSON is left
