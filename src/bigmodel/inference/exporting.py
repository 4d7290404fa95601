"""Export an :class:`~bigmodel.inference.backends.InferenceGraph` (raw batch -> logits) to ONNX (the dynamo
exporter, ``torch.onnx.export(..., dynamo=True)``) or to a ``torch.export`` program (``.pt2``), and verify
the result against eager PyTorch on real samples."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from bigmodel.utils.errors import ConfigError


class ExportError(ConfigError):
    """The model cannot be exported, or the export does not reproduce eager PyTorch."""


def dynamic_shapes(kind: str, example: torch.Tensor, max_length: int | None = None) -> tuple[dict[int, Any]]:
    """Dynamic axes of the single input: batch always; the sequence axis for text and language models
    (``1..max_length``; a language model's ``max_length`` is its ``block_size``)."""
    axes: dict[int, Any] = {0: Dim("batch", min=1, max=65536)}
    if kind in ("text", "lm"):
        axes[1] = Dim("seq", min=1, max=int(max_length or 4096))
    return (axes,)


def axis_names(kind: str, example: torch.Tensor) -> list[Any]:
    """The input's shape with dynamic axes named, for the manifest."""
    shape: list[Any] = list(example.shape)
    shape[0] = "batch"
    if kind in ("text", "lm"):
        shape[1] = "seq"
    return shape


def _modules_using(ep: torch.export.ExportedProgram, op_names: Iterable[str]) -> list[str]:
    """``"module.path (Class)"`` of every node of ``ep`` whose target matches one of ``op_names``."""
    wanted = {o.replace("::", ".") for o in op_names}
    found = []
    for node in ep.graph.nodes:
        target = str(node.target)
        if node.op == "call_function" and any(w in target for w in wanted):
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, cls = list(stack.values())[-1]
                cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
                found.append(f"{path or '<root>'} ({cls_name.rsplit('.', 1)[-1]})")
    return sorted(set(found))


def trace(graph: nn.Module, example: torch.Tensor, shapes: tuple) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``graph`` on ``example`` with ``shapes``.

    Raises:
        ExportError: torch.export cannot capture the model (the message is torch's, with the fix hint).
    """
    try:
        return torch.export.export(graph, (example,), dynamic_shapes=shapes, strict=False)
    except Exception as e:
        raise ExportError(
            f"torch.export could not capture the model ({type(e).__name__}): {str(e).strip()[:2000]}"
        ) from None


def to_onnx(ep: torch.export.ExportedProgram, path: Path, opset: int | None) -> int:
    """Write ``ep`` as one ONNX file (weights inside); returns the opset used.

    Raises:
        ExportError: the exporter rejects an op; the message names the op(s) and the module(s) using them.
    """
    import onnx

    try:
        program = torch.onnx.export(
            ep, f=None, input_names=["input"], output_names=["logits"], opset_version=opset, dynamo=True,
            external_data=False, verbose=False,
        )  # fmt: skip
    except Exception as e:
        msg = str(e)
        ops = sorted(set(re.findall(r"\b[a-z_][a-z0-9_]*(?:::|\.)[A-Za-z_][A-Za-z0-9_]*(?:\.[a-z_]+)?", msg)))
        ops = [o for o in ops if o.split(":")[0].split(".")[0] not in ("torch", "onnx", "onnxscript", "self")]
        where = _modules_using(ep, [o.split(".default")[0] for o in ops])
        raise ExportError(
            f"The ONNX exporter rejected the model: op(s) {', '.join(ops) or '(see below)'} used in module(s) "
            f"{', '.join(where) or '(unknown)'}. Replace the op with supported ones, or export format=pt2. "
            f"Exporter said: {msg.strip()[:1500]}"
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return int(next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))


def save_program(
    ep: torch.export.ExportedProgram, fmt: str, path: Path, opset: int | None = None
) -> int | None:
    """Write ``ep`` to ``path`` as ``fmt``: ``onnx`` (:func:`to_onnx`; returns the opset used) or ``pt2``
    (``torch.export.save``; returns None).

    Raises:
        ExportError: as :func:`to_onnx`.
    """
    if fmt == "onnx":
        return to_onnx(ep, path, opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(ep, str(path))
    return None


def compare(eager: torch.Tensor, other: torch.Tensor, atol: float, min_agree: float) -> dict[str, Any]:
    """``max_abs_diff``, ``argmax_agree`` and whether they pass (``|a - b| <= atol * max(1, |a|)``)."""
    eager, other = eager.float(), other.float()
    diff = (eager - other).abs()
    ok_close = bool((diff <= atol * eager.abs().clamp(min=1.0)).all())
    agree = float((eager.argmax(-1) == other.argmax(-1)).float().mean())
    return {
        "samples": int(eager.shape[0]), "max_abs_diff": float(diff.max()), "argmax_agree": agree,
        "atol": atol, "min_argmax_agree": min_agree, "passed": ok_close and agree >= min_agree,
    }  # fmt: skip


def verify(
    graph: nn.Module, run: Any, batches: Iterable[torch.Tensor], atol: float = 1e-4, min_agree: float = 0.999
) -> dict[str, Any]:
    """Run ``batches`` through eager ``graph`` and through ``run`` (raw batch -> logits); compare.

    Raises:
        ExportError: no samples, or logits / argmax outside the tolerance (the message gives the figures).
    """
    eager_out, other_out = [], []
    with torch.no_grad():
        for x in batches:
            eager_out.append(graph(x))
            out = run(x)
            other_out.append(torch.from_numpy(np.asarray(out)) if not isinstance(out, torch.Tensor) else out)
    if not eager_out:
        raise ExportError("No samples to verify the export with; pass verify_inputs=<file|folder>.")
    result = compare(torch.cat(eager_out), torch.cat(other_out), atol, min_agree)
    if not result["passed"]:
        raise ExportError(
            f"The exported model does not reproduce eager PyTorch on {result['samples']} samples: max |logit diff| "
            f"{result['max_abs_diff']:.3g} (limit {atol:g} x max(1, |logit|)), argmax agreement "
            f"{result['argmax_agree']:.4f} (need >= {min_agree})."
        )
    return result
