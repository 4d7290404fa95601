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
