import torch

from bigmodel.models.classification import ClassificationModule
from bigmodel.models.optim import build_scheduler

NET = {"_target_": "bigmodel.nets.big_mlp.BigMLP", "in_features": 64, "num_classes": 10, "hidden_sizes": [16]}
OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


def test_module_builds_net_from_plain_config_and_steps():
    m = ClassificationModule(net=NET, optimizer=OPT, num_classes=10)
    assert m.hparams.net == NET  # plain data, no OmegaConf or nn.Module objects
    out = m._step((torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))), "val")
    assert out["preds"].shape == (6,) and out["logits"].shape == (6, 10) and out["loss"].ndim == 0


def test_scheduler_gets_run_length():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = {
        "scheduler": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True},
        "interval": "step",
    }
    sched = build_scheduler(cfg, opt, total_steps=123, total_epochs=4)
    assert sched["scheduler"].T_max == 123 and sched["interval"] == "step"
    cfg["interval"] = "epoch"
    assert build_scheduler(cfg, opt, total_steps=123, total_epochs=4)["scheduler"].T_max == 4
