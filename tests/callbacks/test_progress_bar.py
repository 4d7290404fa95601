"""RichProgressBar: the training bar is redrawn every refresh_rate batches and on the epoch's last batch."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar as LightningBar

from bigmodel.callbacks.progress_bar import RichProgressBar


def test_redraws_every_refresh_rate_batches_and_the_last(monkeypatch):
    drawn = []
    monkeypatch.setattr(LightningBar, "on_train_batch_end", lambda self, t, m, o, b, i: drawn.append(i + 1))
    monkeypatch.setattr(RichProgressBar, "total_train_batches", property(lambda self: 25))
    bar = RichProgressBar(refresh_rate=10)
    for i in range(25):
        bar.on_train_batch_end(None, None, None, None, i)
    assert drawn == [10, 20, 25]
