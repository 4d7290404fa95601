"""Knowledge distillation: the loss equals Hinton et al.'s formula, a teacher -> student run on digits,
and the teacher/data mismatch errors before training."""

from __future__ import annotations

import math

import pytest
import torch

from bigmodel.inference.loader import load_model
from bigmodel.models.distillation import DistillationModule, distillation_loss
from bigmodel.utils.errors import ConfigError
from tests.compression.conftest import _train, digits_cnn_ckpt  # noqa: F401 - the session fixture


def test_loss_equals_the_formula_on_a_hand_made_batch():
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[1.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    y = torch.tensor([0, 2])
    alpha, T = 0.7, 2.0

    def softmax(row):
        e = [math.exp(v / T) for v in row]
        return [v / sum(e) for v in e]

    kl = 0.0
    for srow, trow in zip(s.tolist(), t.tolist(), strict=True):
        p, q = softmax(trow), softmax(srow)
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    kl /= 2
    ce = (
        -sum(
            math.log(math.exp(row[c]) / sum(math.exp(v) for v in row))
            for row, c in zip(s.tolist(), y.tolist(), strict=True)
        )
        / 2
    )
    want = alpha * T * T * kl + (1 - alpha) * ce
    loss, soft, hard = distillation_loss(s, t, y, alpha, T)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert soft.item() == pytest.approx(T * T * kl, rel=1e-6) and hard.item() == pytest.approx(ce, rel=1e-6)
    # alpha = 0 is plain cross-entropy; identical logits give no soft loss
    assert distillation_loss(s, s, y, 0.5, T)[1].item() == pytest.approx(0.0, abs=1e-7)


def test_bad_alpha_and_temperature_name_their_keys():
    net = {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
    with pytest.raises(ConfigError, match="model.alpha=1.5"):
        DistillationModule(net, opt, 2, alpha=1.5)
    with pytest.raises(ConfigError, match="model.temperature=0"):
        DistillationModule(net, opt, 2, temperature=0)


class _CountingTeacher(torch.nn.Module):
    """Logits from the non-padding ids alone (as a masked encoder's), counting the rows it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        nonpad = (x != 0).float()
        return torch.stack([(x * nonpad).sum(1).float(), nonpad.sum(1)], dim=1)


def test_teacher_cache_computes_each_example_once_whatever_its_padding():
    net = {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
    module = DistillationModule(net, opt, 2, cache_teacher=True)
    teacher = _CountingTeacher()
    object.__setattr__(module, "teacher", teacher)
    first = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]])
    assert torch.equal(module._teacher_logits(first), teacher(first))
    teacher.rows = 0
    # the same two phrases reshuffled, padded to another length, plus one new phrase
    again = torch.tensor([[7, 0, 0], [5, 6, 0], [8, 9, 1]])
    assert torch.equal(module._teacher_logits(again), _CountingTeacher()(again))
    assert teacher.rows == 1  # only the new phrase reached the teacher
    assert (module._hits, module._misses) == (2, 3)
    # without the cache, every row goes through the teacher every time
    plain = DistillationModule(net, opt, 2)
    object.__setattr__(plain, "teacher", teacher)
    teacher.rows = 0
    plain._teacher_logits(again)
    assert teacher.rows == 3


@pytest.mark.parametrize("cache", [False, True], ids=["on-the-fly", "cached"])
def test_cnn_teacher_distils_into_an_mlp_student_on_digits(tmp_path, digits_cnn_ckpt, cache):  # noqa: F811
    metrics = _train(
        tmp_path,
        "experiment=digits_mlp",
        "model=distillation",
        f"model.teacher_ckpt={digits_cnn_ckpt}",
        f"model.cache_teacher={cache}",
        "trainer.max_epochs=2",
    )
    assert metrics["test/acc"] > 0.5
    # digits has no train-time augmentation: every example of the second epoch comes from the cache
    assert metrics.get("train/teacher_cache_hit_rate") == (1.0 if cache else None)
    ckpt = torch.load(metrics["last_ckpt_path"], weights_only=True)
    assert not any(k.startswith("teacher") for k in ckpt["state_dict"])  # the student alone
    loaded = load_model(metrics["last_ckpt_path"])  # predict/serve load it without the teacher
    assert loaded.module.teacher is None and loaded.module.hparams.alpha == pytest.approx(0.9)


def test_teacher_with_other_input_shape_fails_before_training(tmp_path, digits_cnn_ckpt, shared_data):  # noqa: F811
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(1, 8, 8\).*gives \(1, 28, 28\)"):
        _train(
            tmp_path,
            "experiment=mnist_distill",
            f"model.teacher_ckpt={digits_cnn_ckpt}",
            "+trainer.limit_train_batches=2",
            "trainer.max_epochs=1",
        )
    assert not list(tmp_path.rglob("*.ckpt"))


def test_teacher_with_other_class_count_fails_before_training(tmp_path, digits_cnn_ckpt, shared_data):  # noqa: F811
    with pytest.raises(ConfigError, match=r"predicts 10 classes but the student's data has 2"):
        _train(
            tmp_path,
            "experiment=sms_spam_transformer",
            "model=distillation",
            f"model.teacher_ckpt={digits_cnn_ckpt}",
            "trainer.max_epochs=1",
        )


@pytest.mark.parametrize(
    ("epochs", "world_size", "stays_on"),
    [
        ([(0, 100), (100, 0)], 1, True),  # filled, then every example hit
        ([(0, 100), (0, 100)], 1, False),  # augmentation: nothing recurs
        ([(0, 100), (1, 99), (2, 98)], 1, False),  # a few unchanged inputs must not keep it on (a flip...)
        ([(0, 100)], 1, True),  # a resumed process starts empty: its first epoch fills, is not judged
        ([(0, 100), (48, 52)], 2, True),  # DDP: a rank sees a reshuffled half, ~1/2 of it cached
    ],
)
def test_teacher_cache_turns_off_only_when_inputs_change(monkeypatch, epochs, world_size, stays_on):
    from types import SimpleNamespace

    from bigmodel.models.classification import ClassificationModule

    net = {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
    module = DistillationModule(net, opt, 2, cache_teacher=True)
    monkeypatch.setattr(ClassificationModule, "on_train_epoch_end", lambda self: None)
    module.log = lambda *a, **k: None
    module.trainer = SimpleNamespace(world_size=world_size, current_epoch=0)
    for i, (hits, misses) in enumerate(epochs):
        module.trainer.current_epoch = 5 + i  # as in a run resumed at epoch 5
        module._hits, module._misses = hits, misses
        module.on_train_epoch_end()
    assert (module._cache is not None) == stays_on
