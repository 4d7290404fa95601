"""AtomicCheckpointIO: what it adds over Lightning's own save (fsync, rename within the folder)."""

import os

import fsspec
import pytest
import torch

from bigmodel.utils.checkpoint_io import AtomicCheckpointIO


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, path)
    good = path.read_bytes()

    def crash(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == good  # the old checkpoint is intact
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, tmp_path / "a.ckpt")
    assert calls == ["fsync", "replace"]


def test_remote_paths_keep_lightnings_save():
    path = "memory://bigmodel-test/ckpts/last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, path)
    with fsspec.open(path, "rb") as f:
        assert torch.equal(torch.load(f, weights_only=True)["w"], torch.ones(2))
