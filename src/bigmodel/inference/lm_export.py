"""Export a language model (``loaded.kind == "lm"``, e.g. ``shakespeare_char_gpt``): the decoder net from
token ids ``(B, T)`` int64 to logits ``(B, T, V)`` float32, to ONNX (the dynamo exporter) or ``torch.export``.

The graph has a dynamic batch axis and a dynamic sequence axis ``1..block_size`` when the exporter accepts
them; otherwise it falls back to a fixed ``(1, block_size)`` window and the manifest says so (runtimes then
right-pad, see :func:`bigmodel.inference.backends.fit_window`). Tokenization and the sampling loop (window
crop, temperature, top_k, seeded ``multinomial``) stay outside the graph: ``predict``/``serve
backend=onnxruntime`` run the module's own loop around the session
(:class:`bigmodel.inference.backends.OnnxRuntimeLanguageModel`).

Every export is verified at once: logits of every position of real token windows (the training run's test
split encoded with the checkpoint's tokenizer, or ``verify_inputs`` prompts), plus short prefixes of them,
must match eager PyTorch within ``atol`` with the same argmax, else :class:`ExportError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bigmodel.inference.backends import OnnxRuntimeModule, fit_window, window_logits
from bigmodel.inference.exporting import ExportError, dynamic_shapes, save_program, trace, verify
from bigmodel.inference.loader import LoadedModel

log = logging.getLogger(__name__)
LOOP = (
    "per new token: crop the ids to the last block_size, logits[:, -1] / max(temperature, 1e-8), keep the "
    "top_k largest (top_k=1: greedy), softmax, torch.multinomial with a generator seeded seed + batch_idx*1000 "
    "+ i (bigmodel.nets.gpt.sample_tokens)"
)


def _flat(fn: Callable[[torch.Tensor], Any], vocab: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn``'s logits ``(B, T, V)`` as ``(B*T, V)``, so windows of different lengths concatenate."""
    return lambda x: torch.as_tensor(fn(x)).reshape(-1, vocab)


def with_prefixes(batches: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``batches`` plus the first two rows of the first one cut to 1 and ``T // 2`` tokens, so the
    verification covers short contexts (the start of generation) as well as full windows."""
    out = list(batches)
    if out and out[0].shape[1] > 1:
        first = out[0][:2]
        out += [first[:, :t] for t in sorted({1, max(1, first.shape[1] // 2)})]
    return out


def _capture(
    net: nn.Module, fmt: str, model_file: Path, example: torch.Tensor, shapes: tuple | None, opset: int | None
) -> int | None:
    """Trace ``net`` and write ``model_file``; returns the ONNX opset (None for pt2)."""
    with torch.no_grad():
        ep = trace(net, example, shapes)
    return save_program(ep, fmt, model_file, opset)


def export_language_model(
    loaded: LoadedModel, fmt: str, out_dir: Path, batches: Sequence[torch.Tensor], atol: float,
    min_agree: float, opset: int | None = None,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Export ``loaded``'s net to ``out_dir/model.{onnx|pt2}`` and verify it on ``batches`` (int64 ids
    ``(B, T)``, ``T <= block_size``); returns the file and the manifest's model-specific keys.

    Raises:
        ExportError: the exporter rejects the net even at a fixed window (naming op and module), or the
            export does not reproduce eager PyTorch (the message gives the figures).
    """
    net = loaded.module.net.eval()
    block = int(loaded.module.hparams.net["block_size"])
    vocab = int(loaded.module.hparams.net["vocab_size"])
    model_file = out_dir / f"model.{fmt}"
    seq: dict[str, Any] = {"axis": "dynamic", "min": 1, "max": block}
    example = torch.randint(0, vocab, (2, min(8, block)))
    try:
        used_opset = _capture(net, fmt, model_file, example, dynamic_shapes("lm", example, block), opset)
    except ExportError as e:  # a symbolic sequence length the exporter cannot carry: one static window
        log.warning("Dynamic sequence axis rejected; exporting a fixed (1, %d) window: %s", block, e)
        seq = {"axis": "fixed", "length": block, "why": str(e)[:500],
               "padding": "right-pad the ids with 0 to block_size (causal: logits at positions < T are "
                          "unchanged), one row per call; read logits[:, :T]"}  # fmt: skip
        used_opset = _capture(net, fmt, model_file, torch.randint(0, vocab, (1, block)), None, opset)
    fixed = seq["axis"] == "fixed"
    if fmt == "onnx":
        run, runtime = window_logits(OnnxRuntimeModule(model_file)), "onnxruntime"
    else:
        program = torch.export.load(str(model_file)).module()
        run, runtime = fit_window(program, block if fixed else None, fixed), "torch.export.load(...).module()"
    batches = with_prefixes(batches)
    check = verify(_flat(net, vocab), _flat(run, vocab), batches, atol, min_agree)
    check.update(runtime=runtime, unit="token positions", lengths=sorted({int(b.shape[1]) for b in batches}))
    shape_in: list[Any] = [1, block] if fixed else ["batch", "seq"]
    body = {
        "inputs": [{"name": "input", "shape": shape_in, "dtype": "int64"}],
        "outputs": [{"name": "logits", "shape": [*shape_in, vocab], "dtype": "float32"}],
        "sequence_axis": seq,
        "block_size": block,
        "vocab_size": vocab,
        "class_names": None,
        "compression": loaded.compression,
        "preprocessing": loaded.pre.manifest(),  # holds the tokenizer, as the checkpoint does (to_dict())
        "generation": {"loop": LOOP, "defaults": dict(loaded.module.hparams.get("sample") or {})},
        "outside_graph": "tokenization and the sampling loop (predict/serve backend=onnxruntime run both)",
        "opset": used_opset,
        "verification": check,
    }
    return model_file, body
