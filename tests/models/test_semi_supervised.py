"""FixMatch module: the loss formula, the hidden labels, the bad inputs and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from bigmodel.callbacks.ema import EMA
from bigmodel.models.semi_supervised import SemiSupervisedModule, fixmatch_loss
from bigmodel.train import train
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET

NET = {"_target_": "bigmodel.nets.big_mlp.BigMLP", "in_features": 64, "num_classes": 10, "hidden_sizes": [16]}
OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


def test_fixmatch_loss_on_a_hand_made_batch():
    logits_x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 0])
    # weak views: the first is confident (p = 0.982 for class 1), the second is not (p = 0.5)
    logits_w = torch.tensor([[0.0, 4.0], [1.0, 1.0]])
    logits_s = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    out = fixmatch_loss(logits_x, y, logits_w, logits_s, threshold=0.95, lambda_u=2.0)
    ce = lambda z, k: -torch.log_softmax(z, -1)[k].item()  # noqa: E731
    loss_x = (ce(logits_x[0], 0) + ce(logits_x[1], 0)) / 2
    loss_u = (ce(logits_s[0], 1) * 1 + 0) / 2  # mean over all unlabelled samples, masked ones count 0
    assert out["mask"].tolist() == [1.0, 0.0] and out["pseudo"].tolist() == [1, 0]
    assert math.isclose(out["loss_x"].item(), loss_x, rel_tol=1e-5)
    assert math.isclose(out["loss_u"].item(), loss_u, rel_tol=1e-5)
    assert math.isclose(out["loss"].item(), loss_x + 2.0 * loss_u, rel_tol=1e-5)
    assert fixmatch_loss(logits_x, y, logits_w, logits_s, threshold=1.0, lambda_u=2.0)["mask"].sum() == 0


def test_distribution_alignment_rescales_the_weak_probabilities():
    # weak p = [0.6, 0.4]; align = [1, 2] gives [0.6, 0.8] / 1.4 = [0.4286, 0.5714]: class 1, below 0.6
    logits_w = torch.log(torch.tensor([[0.6, 0.4]]))
    args = (torch.zeros(1, 2), torch.tensor([0]), logits_w, torch.zeros(1, 2))
    plain = fixmatch_loss(*args, threshold=0.55, lambda_u=1.0)
    aligned = fixmatch_loss(*args, threshold=0.55, lambda_u=1.0, align=torch.tensor([1.0, 2.0]))
    assert plain["pseudo"].tolist() == [0] and aligned["pseudo"].tolist() == [1]
    assert aligned["mask"].tolist() == [1.0]  # 0.5714 >= 0.55
    assert (
        fixmatch_loss(*args, threshold=0.6, lambda_u=1.0, align=torch.tensor([1.0, 2.0]))["mask"].sum() == 0
    )


def test_dist_align_tracks_the_model_distribution():
    model = SemiSupervisedModule(
        net=NET, optimizer=OPT, num_classes=10, dist_align=True, dist_align_momentum=0.5
    )
    logits_w = torch.zeros(4, 10)
    logits_w[:, 3] = 5.0  # the model piles its weak predictions onto class 3
    batch_mean = torch.softmax(logits_w, -1).mean(0)
    align = model._alignment(logits_w)
    p_model = 0.5 * torch.full((10,), 0.1) + 0.5 * batch_mean
    assert torch.allclose(model.p_model, p_model)
    assert torch.allclose(align, 0.1 / p_model)
    assert align[3] < 1 < align[0]  # the over-predicted class is scaled down, the others up
    assert "p_model" not in model.state_dict()  # checkpoints still load into a plain classifier
    off = SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10)
    assert off._alignment(logits_w) is None


def test_dist_align_stays_float32_under_bf16_and_travels_in_checkpoints():
    model = SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10, dist_align=True).to(torch.bfloat16)
    logits_w = torch.zeros(4, 10)
    logits_w[:, 3] = 5.0
    for _ in range(300):  # a bf16 buffer would round every 0.001-sized update away and stay uniform
        model._alignment(logits_w)
    assert model.p_model.dtype == torch.float32 and model.p_model[3] > 0.3
    ckpt = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    resumed = SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10, dist_align=True)
    resumed.on_load_checkpoint(ckpt)
    assert torch.equal(resumed.p_model, model.p_model)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"dist_align_momentum": 1.0}, "dist_align_momentum"),
        ({"dist_align_momentum": -0.1}, "dist_align_momentum"),
        ({"dist_align_momentum": "abc"}, "dist_align_momentum"),
        ({"dist_align": "false"}, "dist_align"),
    ],
)
def test_bad_dist_align_settings_are_config_errors(kwargs, key):
    with pytest.raises(ConfigError, match=rf"model\.{key}="):
        SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10, **kwargs)


def test_no_gradient_through_the_weak_view():
    logits_w = torch.tensor([[0.0, 5.0]], requires_grad=True)
    out = fixmatch_loss(
        torch.zeros(1, 2), torch.tensor([0]), logits_w, torch.zeros(1, 2, requires_grad=True), 0.5, 1.0
    )
    out["loss"].backward()
    assert logits_w.grad is None


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_threshold_outside_0_1_is_a_config_error(threshold):
    with pytest.raises(ConfigError, match=r"model\.threshold"):
        SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10, threshold=threshold)


def test_hidden_labels_never_reach_the_loss():
    model = SemiSupervisedModule(net=NET, optimizer=OPT, num_classes=10, threshold=0.1, mu=2)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    xw, xs = torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)
    model.eval()  # no dropout: both calls see the same function
    results = []
    for hidden in (torch.randint(0, 10, (8,)), torch.full((8,), -1), torch.randint(0, 10, (8,))):
        model.zero_grad()
        out = model.training_step({"labeled": (x, y), "unlabeled": (xw, xs, hidden)}, 0)
        out["loss"].backward()
        results.append((out["loss"].item(), [p.grad.clone() for p in model.parameters()]))
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        assert all(torch.equal(a, b) for a, b in zip(grads, results[0][1], strict=True))


def test_ema_keeps_the_averaged_weights_when_testing():
    module = torch.nn.Linear(2, 1)
    avg = {k: torch.zeros_like(v) for k, v in module.state_dict().items()}
    raw = {k: torch.ones_like(v) for k, v in module.state_dict().items()}
    module.load_state_dict(avg)  # what Lightning loaded from checkpoint["state_dict"] (the average)
    ckpt = {"state_dict": avg, "current_model_state": raw, "averaging_state": {"n_averaged": torch.tensor(3)}}
    trainer = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.TESTING))
    EMA(decay=0.9).on_load_checkpoint(trainer, module, ckpt)
    assert all((p == 0).all() for p in module.parameters())


def test_semi_supervised_needs_an_unlabelled_pool_before_training(make_cfg):
    cfg = make_cfg(["experiment=digits_cnn", "model=semi_supervised", *QUIET, "logger=[]"])
    with pytest.raises(ConfigError, match="needs an unlabelled pool"):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))  # failed before any step


def test_fixmatch_trains_end_to_end_on_digits(make_cfg):
    cfg = make_cfg(
        ["experiment=digits_cnn", "model=semi_supervised", "callbacks=[model_checkpoint,ema]", "logger=csv",
         "data.labels_per_class=3", "data.batch_size=10", "model.mu=2", "model.threshold=0.5",
         "trainer.max_epochs=1", "+trainer.limit_train_batches=6", "extras.print_config=false"]
    )  # fmt: skip
    metrics = train(cfg)
    for key in ("train/loss_x", "train/loss_u", "train/mask_rate", "test/acc"):
        assert key in metrics, key
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "labeled_ids.json").read_text())["num_labeled"] == 30
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert "current_model_state" in ckpt  # EMA: state_dict holds the average, the raw weights beside it
    assert (
        ckpt["hyper_parameters"]["mu"] == 2 and ckpt["DigitsDataModule"]["labeled_ids"]["num_labeled"] == 30
    )


def test_ema_decay_warms_up():
    from bigmodel.callbacks.ema import warmup_ema_avg_fn

    fn = warmup_ema_avg_fn(0.999)
    avg, cur = torch.zeros(1), torch.ones(1)
    assert torch.allclose(fn(avg, cur, torch.tensor(0)), torch.tensor([0.9]))  # d = 0.1 at the first update
    assert torch.allclose(fn(avg, cur, torch.tensor(10**6)), torch.tensor([0.001]))  # d = decay later
