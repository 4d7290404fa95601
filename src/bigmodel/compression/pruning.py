"""Magnitude pruning of a net's Linear / Conv weights with ``torch.nn.utils.prune``, made permanent.

Global unstructured L1 pruning ranks every weight of every pruned layer together and zeroes the
smallest ``amount`` fraction (Han et al. 2015, "Learning both Weights and Connections"); layer-wise
prunes ``amount`` of each layer; ``structured`` removes whole output channels / rows by their L_n norm
(``ln_structured``, Li et al. 2017). After pruning, ``prune.remove`` folds the mask into the weight, so
the state dict is plain (``weight`` only, zeros in it) and loads with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import prune as torch_prune

from bigmodel.utils.errors import ConfigError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_amount(amount: Any, key: str) -> float:
    """``amount`` as a float in [0, 1).

    Raises:
        ConfigError: not a number, or outside [0, 1); the message names ``key``.
    """
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={amount!r} must be a number in [0, 1), e.g. {key}=0.5.") from None
    if not 0.0 <= value < 1.0:
        raise ConfigError(
            f"{key}={amount} is outside [0, 1): it is the fraction of weights to prune, e.g. {key}=0.5."
        )
    return value


def prunable_weights(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every Linear / Conv layer of ``net`` (BatchNorm, LayerNorm, embeddings and biases
    are left dense: they are few parameters and pruning them hurts accuracy most)."""
    return [(n, m) for n, m in net.named_modules() if isinstance(m, PRUNABLE)]


def prune(
    net: nn.Module,
    amount: float,
    scope: str = "global",
    structured: bool = False,
    norm: float = 1,
    dim: int = 0,
    permanent: bool = True,
) -> None:
    """Prune ``net`` in place and make it permanent.

    Args:
        amount: fraction of the prunable weights to zero, in [0, 1).
        scope: ``global`` (one threshold over all layers) or ``layer`` (``amount`` of each layer).
        structured: zero whole slices along ``dim`` (output channels for ``dim=0``) by their L_``norm``;
            structured pruning is always layer-wise.
        permanent: fold the masks into the weights now; ``False`` keeps ``torch.nn.utils.prune``'s masks
            (fine-tuning keeps the zeros) until :func:`make_permanent`.

    Raises:
        ConfigError: a bad ``amount`` or ``scope``, or a net without Linear/Conv layers.
    """
    amount = check_amount(amount, "amount")
    if scope not in ("global", "layer"):
        raise ConfigError(f"scope={scope!r} is not one of: global, layer.")
    layers = prunable_weights(net)
    if not layers:
        kinds = sorted({type(m).__name__ for m in net.modules() if list(m.parameters(recurse=False))})
        raise ConfigError(f"method=prune: the net has no Linear/Conv layer to prune; its layers: {kinds}.")
    if structured:
        for _, m in layers:
            torch_prune.ln_structured(m, "weight", amount=amount, n=norm, dim=dim)
    elif scope == "global":
        torch_prune.global_unstructured(
            [(m, "weight") for _, m in layers], pruning_method=torch_prune.L1Unstructured, amount=amount
        )
    else:
        for _, m in layers:
            torch_prune.l1_unstructured(m, "weight", amount=amount)
    if permanent:
        make_permanent(net)


def make_permanent(net: nn.Module) -> None:
    """Fold every pruning mask of ``net`` into its weight (``weight_orig * weight_mask`` -> ``weight``)."""
    for m in net.modules():
        if torch_prune.is_pruned(m) and hasattr(m, "weight_mask"):
            torch_prune.remove(m, "weight")


def sparsity(net: nn.Module) -> dict[str, Any]:
    """``{"total": fraction of zero prunable weights, "layers": {name: fraction}}``; ``total`` counts the
    Linear/Conv weights only (biases and norms are never pruned)."""
    layers, zeros, count = {}, 0, 0
    for name, m in prunable_weights(net):
        w = m.weight.detach()
        if not w.is_floating_point():  # a quantized layer: report nothing rather than a wrong number
            continue
        z = int((w == 0).sum())
        layers[name or type(m).__name__] = round(z / w.numel(), 6)
        zeros, count = zeros + z, count + w.numel()
    return {"total": round(zeros / count, 6) if count else 0.0, "layers": layers}


def count_parameters(net: nn.Module, nonzero: bool = False) -> int:
    """Parameters of ``net`` (``nonzero``: only the non-zero ones, i.e. what a sparse format would keep).
    A ``torch.ao`` dynamic-quantized Linear holds its weight in a packed buffer, not a parameter: it is
    counted through its public ``weight()`` / ``bias()``."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

    tensors = [p.detach() for p in net.parameters()]
    for m in net.modules():
        if isinstance(m, DynamicQuantLinear):
            tensors.append(m.weight().int_repr())
            if m.bias() is not None:
                tensors.append(m.bias().detach())
    return int(sum(int((t != 0).sum()) if nonzero else t.numel() for t in tensors))


class GradualSchedule:
    """The amount to prune at each epoch for Lightning's ``ModelPruning`` (``amount=<callable>``):
    the cubic schedule of Zhu & Gupta 2017 ("To prune, or not to prune") from 0 at ``start_epoch`` to
    ``final`` sparsity at ``end_epoch``.

    ``torch.nn.utils.prune`` applies an amount to the weights *still unpruned*, so the call returns the
    increment ``1 - (1 - s_t) / (1 - s_{t-1})`` that takes the total sparsity from ``s_{t-1}`` to ``s_t``.

    Raises:
        ConfigError: ``final`` outside [0, 1) (names ``callbacks.pruning.amount.final``), or
            ``end_epoch < start_epoch``.
    """

    def __init__(self, final: float, start_epoch: int = 0, end_epoch: int = 0) -> None:
        self.final = check_amount(final, "callbacks.pruning.amount.final")
        if end_epoch < start_epoch:
            raise ConfigError(
                f"callbacks.pruning.amount: end_epoch={end_epoch} is before start_epoch={start_epoch}."
            )
        self.start, self.end = int(start_epoch), int(end_epoch)

    def target(self, epoch: int) -> float:
        """Total sparsity wanted after ``epoch``."""
        if epoch < self.start:
            return 0.0
        if epoch >= self.end:
            return self.final
        progress = (epoch - self.start + 1) / (self.end - self.start + 1)
        return self.final * (1 - (1 - progress) ** 3)

    def __call__(self, epoch: int) -> float:
        before = self.target(epoch - 1) if epoch > 0 else 0.0
        now = self.target(epoch)
        return 0.0 if now <= before else 1 - (1 - now) / (1 - before)
