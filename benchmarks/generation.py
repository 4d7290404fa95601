"""Row (f) for language models: ``gpt_nano`` generation tokens/s on the CPU, eager PyTorch vs
``torch.compile`` vs ONNX Runtime, in one run.

Every backend runs the same greedy loop over a full context window: ``(1, block_size)`` token ids in,
the last position's logits out, one new token appended, the window slid by one. A fixed window keeps
one static shape, so ``torch.compile`` compiles once and the ONNX graph (the dynamo exporter,
``torch.onnx.export(dynamo=True)`` through :func:`bigmodel.inference.exporting.to_onnx`) needs no
dynamic axes. The weights are random (tokens/s do not depend on them); the backends must pick the same
tokens, which checks that the three graphs agree. GPT: Radford et al. 2019 (``bigmodel.nets.gpt``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import hydra
import torch
from torch import nn

from bigmodel.inference.backends import OnnxRuntimeModule
from bigmodel.inference.exporting import to_onnx, trace


class LastLogits(nn.Module):
    """``idx`` ``(B, T)`` -> the last position's logits ``(B, V)`` (what one generation step needs)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(idx)[:, -1, :]


def _greedy(step, window: torch.Tensor, new_tokens: int) -> tuple[list[int], float]:
    """(the new token ids, tokens/s) of ``new_tokens`` greedy steps of ``step`` from ``window``."""
    out, t0 = [], time.perf_counter()
    with torch.no_grad():
        for _ in range(new_tokens):
            nxt = step(window).argmax(-1, keepdim=True)
            window = torch.cat([window[:, 1:], nxt], dim=1)
            out.append(int(nxt))
    return out, new_tokens / (time.perf_counter() - t0)


def generation(net_cfg: dict, threads: int, quick: bool = False) -> dict:
    """Tokens/s of eager / compile / ONNX Runtime for the GPT built from ``net_cfg`` (``model.net``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = hydra.utils.instantiate(net_cfg).eval()
    step = LastLogits(net).eval()
    window = torch.randint(0, int(net_cfg["vocab_size"]), (1, int(net_cfg["block_size"])))
    n = 20 if quick else 100
    out: dict = {"model": "gpt_nano", "block_size": int(net_cfg["block_size"]), "new_tokens": n,
                 "threads": threads}  # fmt: skip
    compiled = torch.compile(step, dynamic=False)
    with tempfile.TemporaryDirectory() as d:
        with torch.no_grad():
            ep = trace(step, window, None)
        to_onnx(ep, Path(d) / "gpt.onnx", None)
        ort = OnnxRuntimeModule(Path(d) / "gpt.onnx", threads)
        tokens = {}
        for label, fn in (("eager", step), ("compile", compiled), ("onnxruntime", ort.logits)):
            _greedy(fn, window, 3)  # warm-up (compile happens here)
            best = 0.0
            for _ in range(1 if quick else 3):  # the fastest of a few rounds: the machine is shared
                tokens[label], rate = _greedy(fn, window, n)
                best = max(best, rate)
            out[f"{label}_tokens_per_s"] = best
    out["same_tokens"] = tokens["eager"] == tokens["compile"] == tokens["onnxruntime"]
    out["compile_vs_eager"] = out["compile_tokens_per_s"] / out["eager_tokens_per_s"]
    out["ort_vs_eager"] = out["onnxruntime_tokens_per_s"] / out["eager_tokens_per_s"]
    return out
