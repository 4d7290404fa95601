"""``callbacks=pruning``: Lightning's ``ModelPruning`` restricted to Linear/Conv weights, with the amount
checked up front and the final sparsity logged.

Gradual magnitude pruning: ``amount`` is a fraction (pruned again at each epoch end, of the weights
still unpruned) or a :class:`~bigmodel.compression.pruning.GradualSchedule` (Zhu & Gupta 2017). With
``make_pruning_permanent`` (on), every saved checkpoint holds plain ``weight`` tensors (the masks folded
in), so it loads with ``weights_only=True`` and needs no pruning code at inference.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import ModelPruning

from bigmodel.compression.pruning import PRUNABLE, GradualSchedule, check_amount, sparsity


class Pruning(ModelPruning):
    """``ModelPruning`` over the net's Linear/Conv ``weight``s (norms, embeddings and biases stay dense).

    Args:
        amount: a fraction in [0, 1) or a callable ``epoch -> fraction`` (e.g. ``GradualSchedule``).
        **kwargs: ``ModelPruning``'s (``pruning_fn``, ``use_global_unstructured``, ``pruning_norm``, ...).

    Raises:
        ConfigError: a numeric ``amount`` outside [0, 1) (names ``callbacks.pruning.amount``).
    """

    def __init__(self, amount: Any = 0.5, **kwargs: Any) -> None:
        if not (callable(amount) or isinstance(amount, GradualSchedule)):
            amount = check_amount(amount, "callbacks.pruning.amount")
        super().__init__(amount=amount, **kwargs)

    def filter_parameters_to_prune(self, parameters_to_prune=()):
        return [(m, name) for m, name in parameters_to_prune if isinstance(m, PRUNABLE) and name == "weight"]

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        net = getattr(pl_module, "net", pl_module)
        # after make_pruning_permanent the weights are plain again; metrics.json picks this up
        trainer.callback_metrics["prune/sparsity"] = torch.tensor(sparsity(net)["total"])
