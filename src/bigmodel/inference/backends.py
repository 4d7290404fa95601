"""The two inference backends behind ``predict``/``serve``: the eager LightningModule (``torch``) and an
exported ONNX model run by ONNX Runtime (``onnxruntime``). Both take the same *raw* batches (see
:mod:`bigmodel.inference.preprocess`) and return class probabilities ``(B, K)``, or for a language model
a continuation per prompt from the module's one sampling loop, whose logits come from the net or the
ONNX session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import nn

from bigmodel.data.download import sha256_file
from bigmodel.inference.loader import LoadedModel
from bigmodel.utils.errors import ConfigError

BACKENDS = ("torch", "onnxruntime")


class InferenceGraph(nn.Module):
    """Raw batch -> logits: the preprocessor's adapter (image scaling/normalisation) then the model's
    ``forward`` (which holds the audio frontend). This is the module that is exported."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.adapter, self.model = loaded.pre.adapter, loaded.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.adapter(x))


class OnnxRuntimeModule(LightningModule):
    """``predict_step`` through an ONNX Runtime session on raw batches (CPU execution provider).

    Args:
        onnx_path: the exported ``model.onnx``.
        threads: intra-op threads (None: ONNX Runtime's default).
    """

    def __init__(self, onnx_path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {self.input_name: x.cpu().numpy()})
        return torch.from_numpy(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def predict_step(self, batch: Any, batch_idx: int = 0) -> torch.Tensor | None:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return None if x is None else F.softmax(self.logits(x).float(), dim=-1)


def fit_window(
    fn: Callable[[torch.Tensor], torch.Tensor], window: int | None, one_row: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Token ids ``(B, T)`` -> logits ``(B, T, V)`` through ``fn``, a graph exported with a dynamic sequence
    axis (``window=None``: called as it is) or with a fixed ``(1 if one_row else B, window)`` input (the
    exporter's fallback). Fixed: each row is right-padded with id 0 to ``window``; the net is causal, so the
    logits at positions ``< T`` do not see the padding, and they are cut back to ``T``."""
    if window is None:
        return fn

    def logits(idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        padded = F.pad(idx, (0, window - T))
        rows = padded.split(1) if one_row else [padded]
        return torch.cat([torch.as_tensor(fn(r)) for r in rows])[:, :T]

    return logits


def window_logits(ort: OnnxRuntimeModule) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`fit_window` of a language model's ONNX session, the window read from its input shape."""
    batch_dim, seq_dim = ort.session.get_inputs()[0].shape[:2]
    window = seq_dim if isinstance(seq_dim, int) else None
    # ids cropped to the window are a strided view: hand ONNX Runtime a contiguous array
    return fit_window(lambda ids: ort.logits(ids.contiguous()), window, isinstance(batch_dim, int))


class OnnxRuntimeLanguageModel(LightningModule):
    """A language model's ``predict_step`` with the logits from ONNX Runtime: the loaded module's own
    :meth:`~bigmodel.models.language_model.LanguageModelModule.continuations` (window crop, temperature,
    top_k, seeded sampling), given :func:`window_logits` as its ``logits_fn``. ``predict_settings`` as on
    the module."""

    def __init__(self, lm: LightningModule, ort: OnnxRuntimeModule) -> None:
        super().__init__()
        self.lm, self.logits_fn = lm, window_logits(ort)
        self.predict_settings: dict[str, Any] | None = None

    def predict_step(self, batch: Any, batch_idx: int = 0) -> list[str] | None:
        prompts = batch[0] if isinstance(batch, tuple) else batch
        if prompts is None:
            return None
        return self.lm.continuations(prompts, batch_idx, self.predict_settings, self.logits_fn)


def default_onnx_path(ckpt_path: str | Path) -> Path:
    """Where ``export format=onnx`` leaves a copy beside the checkpoint: ``<dir>/<stem>.onnx``."""
    p = Path(ckpt_path)
    return p.with_name(p.stem + ".onnx")


def open_onnx(loaded: LoadedModel, model_path: str | None, threads: int | None = None) -> OnnxRuntimeModule:
    """The ONNX Runtime module for ``loaded`` (``model_path``, or the copy beside its checkpoint), after
    checking that its manifest names this checkpoint.

    Raises:
        ConfigError: no such ``.onnx`` file (with the export command), or one exported from another checkpoint.
    """
    path = Path(model_path) if model_path else default_onnx_path(loaded.ckpt_path)
    if not path.is_file():
        if (loaded.compression or {}).get("method") == "int8_dynamic":  # export refuses it: name what works
            raise ConfigError(
                f"backend=onnxruntime: no ONNX model at {path}, and a method=int8_dynamic checkpoint cannot be "
                "exported (torch.export cannot capture its packed int8 Linear). Export the source (fp32) "
                "checkpoint and quantize the .onnx with onnxruntime.quantization.quantize_dynamic, or use "
                "backend=torch."
            )
        raise ConfigError(
            f"backend=onnxruntime: no ONNX model at {path}. Export it first: "
            f"`make export ckpt_path={loaded.ckpt_path} format=onnx`, or pass model_path=<model.onnx>."
        )
    manifest = path.with_name("manifest.json") if path.name == "model.onnx" else path.with_suffix(".json")
    if manifest.is_file():
        want = json.loads(manifest.read_text()).get("source_checkpoint", {}).get("sha256")
        if want and want != sha256_file(loaded.ckpt_path):
            raise ConfigError(
                f"{path} was exported from another checkpoint than {loaded.ckpt_path} (sha256 differs, see "
                f"{manifest}); export this one again."
            )
    return OnnxRuntimeModule(path, threads)


def predictor(loaded: LoadedModel, backend: str, model_path: str | None = None, threads: int | None = None):
    """``(module, apply_adapter)``: the LightningModule whose ``predict_step`` gives probabilities (a
    language model: continuations, with :class:`OnnxRuntimeLanguageModel` for ``onnxruntime``), and
    whether raw batches must go through the preprocessor's adapter first (torch) or not (ONNX: the adapter
    is inside the graph).

    Raises:
        ConfigError: an unknown backend; for ``onnxruntime``, see :func:`open_onnx`.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not one of: {', '.join(BACKENDS)}.")
    if backend == "torch":
        return loaded.module, True
    ort = open_onnx(loaded, model_path, threads)
    if loaded.kind == "lm":
        return OnnxRuntimeLanguageModel(loaded.module, ort), False
    return ort, False
