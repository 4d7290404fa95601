"""Sharded FSDP checkpoints are folders (shards + meta.pt): resume and eval accept them."""

from __future__ import annotations

import torch

from bigmodel.utils.run import load_checkpoint, resolve_ckpt_path


def test_sharded_checkpoint_folder_resolves_and_loads(tmp_path):
    ckpt = tmp_path / "logs" / "exp" / "runs" / "r1" / "checkpoints" / "last.ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "__0_0.distcp").write_bytes(b"shard")
    torch.save({"bigmodel": {"config": {"seed": 1}}, "epoch": 3}, ckpt / "meta.pt")
    assert resolve_ckpt_path("last", tmp_path / "logs", "exp") == str(ckpt)
    assert resolve_ckpt_path(str(ckpt), tmp_path / "logs", "exp") == str(ckpt.resolve())
    assert load_checkpoint(ckpt)["bigmodel"]["config"]["seed"] == 1
