"""Post-training quantization and half-precision casting of a model's net, in place.

Which library does what on CPU (measured with torch 2.14 / torchao 0.18, see README "Compress"):

- ``int8_dynamic``: int8 weights, activations quantized per batch at run time. torchao's
  ``Int8DynamicActivationInt8WeightConfig`` runs on CPU but without a fused kernel in eager mode (a
  384x1536 MLP ran ~35x *slower* than fp32), so we use the maintained x86/fbgemm path that has one,
  ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of torchao, still shipped). Set
  ``backend=torchao`` to use torchao's config instead.
- ``int8_weight_only``: torchao ``quantize_(net, Int8WeightOnlyConfig())`` (int8 storage, dequantized
  in the matmul: 4x smaller Linear weights, about fp32 speed on CPU).
- ``fp16`` / ``bf16``: the net's floating parameters cast; inputs cast on the way in and logits back to
  fp32 on the way out (forward hooks, so the state-dict keys stay those of the original model).
- ``prune``: see :mod:`bigmodel.compression.pruning` (plain weights, nothing to re-apply at load).

Only ``nn.Linear`` layers are quantized (neither library has a dynamic int8 conv on CPU). A net with
weight layers of other types is quantized where it can be, and those types are named in the report
(``strict=true`` makes them an error).

A compressed checkpoint stores ``checkpoint["compression"] = {"method": ..., "backend": ...}`` next to
the usual entries. Loading rebuilds the fp32 model, re-applies the same transformation
(:func:`prepare_for_checkpoint`, with throw-away weights), then loads the stored (int8 / fp16) state dict.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any

import torch
from torch import nn

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

METHODS = ("int8_dynamic", "int8_weight_only", "fp16", "bf16", "prune")
QUANT_METHODS = ("int8_dynamic", "int8_weight_only")
BACKENDS = {"int8_dynamic": ("torch_ao", "torchao"), "int8_weight_only": ("torchao",)}
# layer types whose weights quantization could target; ones not in QUANTIZABLE are reported as skipped
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.MultiheadAttention)
QUANTIZABLE = (nn.Linear,)


def layer_census(net: nn.Module) -> dict[str, Counter]:
    """``{"quantizable": Counter(type name -> n), "unsupported": ..., "all": ...}`` over ``net``'s leaf
    layers with weights. ``nn.MultiheadAttention``'s fused ``out_proj`` is counted as unsupported
    (``NonDynamicallyQuantizableLinear``)."""
    quantizable, unsupported, every = Counter(), Counter(), Counter()
    for m in net.modules():
        name = type(m).__name__
        if any(True for _ in m.children()) and not isinstance(m, nn.MultiheadAttention):
            continue
        if type(m) in QUANTIZABLE:  # exact type: subclasses like NonDynamicallyQuantizableLinear are left
            quantizable[name] += 1
        elif isinstance(m, WEIGHT_LAYERS):
            unsupported[name] += 1
        if list(m.parameters(recurse=False)):
            every[name] += 1
    return {"quantizable": quantizable, "unsupported": unsupported, "all": every}


def _fmt(c: Counter) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.items())) or "none"


def check_quantizable(net: nn.Module, method: str, strict: bool = False) -> dict[str, Counter]:
    """The layer census, after checking ``method`` has something to quantize.

    Raises:
        ConfigError: no ``nn.Linear`` layer (the message names the layer types found), or with
            ``strict`` any weight layer type that is not quantized.
    """
    census = layer_census(net)
    if not census["quantizable"]:
        raise ConfigError(
            f"method={method}: the net ({type(net).__name__}) has no layer it can quantize (supported: "
            f"Linear); its layers with parameters are: {_fmt(census['all'])}. Use method=fp16, bf16 or prune."
        )
    if strict and census["unsupported"]:
        raise ConfigError(
            f"method={method} strict=true: these layers cannot be quantized on CPU: "
            f"{_fmt(census['unsupported'])} (only Linear is). Pass strict=false to quantize the rest."
        )
    if census["unsupported"]:
        log.warning(
            "method=%s leaves these layers in fp32 (no CPU int8 kernel): %s",
            method,
            _fmt(census["unsupported"]),
        )
    return census


class _CastIO:
    """Forward hooks of a half-precision net: floating inputs in ``dtype``, floating outputs back in fp32."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def pre(self, module: nn.Module, args: tuple) -> tuple:
        return tuple(a.to(self.dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    @staticmethod
    def post(module: nn.Module, args: tuple, out: Any) -> Any:
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out


def _torchao_config(method: str):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

    return Int8DynamicActivationInt8WeightConfig() if method == "int8_dynamic" else Int8WeightOnlyConfig()


def default_backend(method: str) -> str | None:
    return BACKENDS[method][0] if method in BACKENDS else None


def apply_method(module: nn.Module, method: str, backend: str | None = None, strict: bool = False) -> dict:
    """Quantize or cast ``module.net`` in place (``prune`` is :func:`~bigmodel.compression.pruning.prune`).

    Args:
        module: a LightningModule with a ``net`` (its ``frontend``, e.g. log-mel, stays fp32).
        method: one of :data:`METHODS` other than ``prune``.
        backend: ``torch_ao`` | ``torchao`` for ``int8_dynamic``; None: the default (module docstring).
        strict: unquantizable weight layers are an error instead of a warning.

    Returns:
        The spec stored in the checkpoint, ``{"method", "backend"}`` (+ ``layers`` for int8).

    Raises:
        ConfigError: an unknown method or backend, or nothing to quantize (:func:`check_quantizable`).
    """
    net = getattr(module, "net", module)
    spec: dict[str, Any] = {"method": method, "backend": None}
    if method in QUANT_METHODS:
        backend = backend or default_backend(method)
        if backend not in BACKENDS[method]:
            raise ConfigError(
                f"backend={backend!r} for method={method} is not one of: {', '.join(BACKENDS[method])}."
            )
        census = check_quantizable(net, method, strict)
        spec.update(
            backend=backend,
            quantized_layers=dict(census["quantizable"]),
            fp32_layers=dict(census["unsupported"]),
        )
        if backend == "torch_ao":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its deprecation notice, said once in the README instead
                # per-channel weight scales: on MiniLM the per-tensor default moved the pooled sentence
                # embedding by 41% (relative L2), per-channel by 27%, at the same speed
                qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
                torch.ao.quantization.quantize_dynamic(
                    net, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True
                )
        else:
            from torchao.quantization import quantize_

            quantize_(net, _torchao_config(method))
    elif method in ("fp16", "bf16"):
        dtype = torch.float16 if method == "fp16" else torch.bfloat16
        net.to(dtype)
        hooks = _CastIO(dtype)
        net.register_forward_pre_hook(hooks.pre)
        net.register_forward_hook(hooks.post)
    elif method != "prune":
        raise ConfigError(f"method={method!r} is not one of: {', '.join(METHODS)}.")
    return spec


def prepare_for_checkpoint(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Make a freshly built fp32 ``module`` able to load ``checkpoint``'s state dict: re-apply the
    compression it records (nothing for an uncompressed or pruned checkpoint)."""
    spec = checkpoint.get("compression") if isinstance(checkpoint, dict) else None
    if spec and spec.get("method") not in (None, "prune"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "leaves these layers in fp32" was said at compress time
            logging.getLogger(__name__).disabled = True
            try:
                apply_method(module, spec["method"], spec.get("backend"))
            finally:
                logging.getLogger(__name__).disabled = False
