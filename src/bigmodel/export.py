"""Export a trained model: ``python -m bigmodel.export ckpt_path=FILE format=onnx|pt2`` (also
``bigmodel-export``, ``make export``).

The exported graph goes from the raw batch (uint8 images, float waveforms, int64 token ids; see
:mod:`bigmodel.inference.preprocess`) to logits: image scaling/normalisation and the audio log-mel frontend
are inside it; tokenization (a string op) is the one step outside, described in ``manifest.json``. A
language model exports its net, token ids ``(B, T)`` -> logits ``(B, T, V)``; the sampling loop stays
outside (:mod:`bigmodel.inference.lm_export`).
Writes ``<run dir>/export/<format>/{model.onnx|model.pt2, manifest.json}`` and, for ONNX, a copy beside the
checkpoint (``<ckpt dir>/<stem>.onnx`` + ``<stem>.json``) that ``predict``/``serve backend=onnxruntime`` find.
Every export is verified at once on real test samples (ONNX with ONNX Runtime): logits within ``atol`` of
eager PyTorch and argmax agreement >= ``min_argmax_agree``, else it fails.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from bigmodel.data.download import sha256_file
from bigmodel.inference import inputs as input_items
from bigmodel.inference.backends import InferenceGraph, OnnxRuntimeModule
from bigmodel.inference.exporting import ExportError, axis_names, dynamic_shapes, save_program, trace, verify
from bigmodel.inference.lm_export import export_language_model
from bigmodel.inference.loader import LoadedModel, load_model
from bigmodel.inference.preprocess import InputError
from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write
from bigmodel.utils.run import entry_ckpt_path

log = logging.getLogger(__name__)
FORMATS = ("onnx", "pt2")
# verification tolerance of a half-precision checkpoint: ONNX Runtime and eager PyTorch round fp16 sums in a
# different order (digits_mlp: 1e-3 apart, fp16 eps 9.8e-4); argmax agreement is still required in full
HALF_ATOL = 1e-2


def check_compressed(loaded: LoadedModel, fmt: str) -> float | None:
    """Refuse the ``bigmodel.compress`` outputs a format cannot hold; return the verification tolerance
    a half-precision checkpoint needs (None: ``atol`` as given).

    Raises:
        ConfigError: ``int8_dynamic`` (torch.ao's packed int8 Linear is opaque to torch.export, hence to
            both formats) or ``bf16`` with ``format=onnx`` (ONNX Runtime has no bf16 CPU kernels); the
            message names the method and what to do instead.
    """
    spec = loaded.compression or {}
    method = spec.get("method")
    source = spec.get("source_ckpt") or "the source checkpoint"
    if method == "int8_dynamic" and spec.get("backend") in (None, "torch_ao"):
        raise ConfigError(
            f"{loaded.ckpt_path} is compressed with method=int8_dynamic (torch.ao dynamic-quantized Linear "
            f"layers, whose packed int8 weights torch.export cannot capture), so format={fmt} cannot hold it. "
            f"Export the fp32 checkpoint (ckpt_path={source}) and quantize the .onnx with "
            "onnxruntime.quantization.quantize_dynamic, or compress with method=int8_weight_only (exports to "
            "onnx and pt2); eval / predict / serve take this checkpoint as it is (backend=torch)."
        )
    if method == "bf16" and fmt == "onnx":
        raise ConfigError(
            f"{loaded.ckpt_path} is compressed with method=bf16 and ONNX Runtime has no bfloat16 CPU kernels "
            "(Gemm/Conv), so the exported model could not run. Use format=pt2, or compress with method=fp16 "
            "for ONNX."
        )
    return HALF_ATOL if method in ("fp16", "bf16") else None


def _test_split_batches(loaded: LoadedModel, cfg: DictConfig, n: int, batch: int) -> Iterator[torch.Tensor]:
    """Raw batches of the first ``n`` test samples of the training run's own data (its test split)."""
    run = loaded.run_config
    data_dir = (
        run.get("data_dir") if run.get("data_dir") and Path(run["data_dir"]).is_dir() else cfg.paths.data_dir
    )
    root = OmegaConf.create(
        {"data": run["data"], "paths": {**OmegaConf.to_container(cfg.paths, resolve=True), "data_dir": data_dir},
         "seed": run.get("seed", 0)}
    )  # fmt: skip
    dm = hydra.utils.instantiate(root.data)
    dm.prepare_data()
    dm.setup("test")
    if hasattr(dm, "load_state_dict") and loaded.kind == "text":
        dm.tokenizer = loaded.pre.tokenizer  # the checkpoint's tokenizer, as eval uses
    if loaded.kind == "lm":  # the checkpoint's tokenizer; the corpus is re-encoded if it differs
        dm.load_state_dict({"tokenizer": loaded.pre.tokenizer_state})
    seen = 0
    for b in dm.test_dataloader():
        x = b[0] if isinstance(b, list | tuple) else b
        if loaded.kind == "image" and x.dtype != torch.uint8:  # digits are float in [0, 1]
            x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        x = x[: n - seen]
        seen += len(x)
        for i in range(0, len(x), batch):
            yield x[i : i + batch]
        if seen >= n:
            return


def _input_batches(loaded: LoadedModel, spec: str, n: int, batch: int) -> Iterator[torch.Tensor]:
    items = input_items.collect(spec, None, loaded.pre, loaded.describe())[:n]
    samples = []
    for item in items:
        try:
            samples.append(input_items.load_item(item, loaded.pre))
        except InputError as e:
            log.warning("verify_inputs: skipping %s", e)
    if loaded.kind == "lm":  # prompts: their token ids (the last block_size), one prompt per batch
        for text in samples:
            try:
                ids = loaded.pre.tokenizer.encode(text)[-loaded.pre.max_length :] or [0]
            except ConfigError as e:  # a char outside the vocabulary: named, as predict names it
                log.warning("verify_inputs: skipping %r: %s", text[:40], e)
                continue
            yield torch.tensor([ids], dtype=torch.long)
        return
    for i in range(0, len(samples), batch):
        yield loaded.pre.collate(samples[i : i + batch])


def verification_batches(loaded: LoadedModel, cfg: DictConfig) -> list[torch.Tensor]:
    """``verify_inputs`` when given, else the run's test split.

    Raises:
        ConfigError: neither is available (names both ways to fix it).
    """
    n, bs = int(cfg.verify_samples), int(cfg.verify_batch_size)
    if cfg.get("verify_inputs"):
        return list(_input_batches(loaded, str(cfg.verify_inputs), n, bs))
    try:
        return list(_test_split_batches(loaded, cfg, n, bs))
    except Exception as e:
        raise ConfigError(
            f"Cannot read the training run's test split to verify the export ({type(e).__name__}: {e}). Pass "
            "verify_inputs=<file|folder of real samples>, or paths.data_dir=<the datasets folder>."
        ) from None


def _export_classifier(
    loaded: LoadedModel, cfg: DictConfig, fmt: str, out_dir: Path, atol: float
) -> tuple[Path, dict[str, Any]]:
    """Raw batch -> logits (:class:`InferenceGraph`), verified on real test samples; returns the file and
    the manifest's model-specific keys."""
    graph = InferenceGraph(loaded).eval()
    example = loaded.pre.example(2)
    shapes = dynamic_shapes(loaded.kind, example, getattr(loaded.pre, "max_length", None))
    with torch.no_grad():
        ep = trace(graph, example, shapes)
    batches = verification_batches(loaded, cfg)
    model_file = out_dir / f"model.{fmt}"
    opset = save_program(ep, fmt, model_file, cfg.get("opset"))
    if fmt == "onnx":
        ort = OnnxRuntimeModule(model_file)
        check = verify(graph, ort.logits, batches, atol, float(cfg.min_argmax_agree))
        check["runtime"] = "onnxruntime"
    else:
        program = torch.export.load(str(model_file)).module()
        check = verify(graph, program, batches, atol, float(cfg.min_argmax_agree))
        check["runtime"] = "torch.export.load(...).module()"
    body = {
        "inputs": [{"name": "input", "shape": axis_names(loaded.kind, example), "dtype": str(example.dtype).replace("torch.", "")}],
        "outputs": [{"name": "logits", "shape": ["batch", len(loaded.class_names or [])], "dtype": "float32"}],
        "class_names": loaded.class_names,
        "compression": loaded.compression,
        "preprocessing": loaded.pre.manifest(),
        "outside_graph": "tokenization (text)" if loaded.kind == "text" else "file decoding only",
        "opset": opset,
        "verification": check,
    }  # fmt: skip
    return model_file, body


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export and verify; returns the manifest (also written as ``manifest.json``). Classifiers export
    raw batch -> logits; language models token ids -> logits (:mod:`bigmodel.inference.lm_export`).

    Raises:
        ConfigError: no/missing checkpoint, an unknown format, a compressed checkpoint the format cannot
            hold (:func:`check_compressed`), no samples to verify with.
        ExportError: an op the exporter rejects (naming op and module), or a failed verification.
    """
    for name in ("onnx_ir", "onnxscript"):  # their pass-by-pass INFO lines drown the run's own log
        logging.getLogger(name).setLevel(logging.WARNING)
    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not one of: {', '.join(FORMATS)}.")
    path = entry_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "export")
    loaded = load_model(path)
    half_atol = check_compressed(loaded, fmt)
    atol = max(float(cfg.atol), half_atol) if half_atol else float(cfg.atol)
    out_dir = Path(cfg.paths.output_dir) / "export" / fmt
    if loaded.kind == "lm":
        model_file, body = export_language_model(
            loaded, fmt, out_dir, verification_batches(loaded, cfg), atol, float(cfg.min_argmax_agree),
            cfg.get("opset"),
        )  # fmt: skip
    else:
        model_file, body = _export_classifier(loaded, cfg, fmt, out_dir, atol)
    manifest = {
        "format": fmt,
        "file": model_file.name,
        "experiment": loaded.experiment,
        "source_checkpoint": {"path": loaded.ckpt_path, "sha256": sha256_file(loaded.ckpt_path)},
        **body,
        "torch": torch.__version__,
    }
    with atomic_write(out_dir / "manifest.json", "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    if fmt == "onnx" and cfg.get("copy_beside_checkpoint", True):
        beside = Path(loaded.ckpt_path).with_suffix(".onnx")
        shutil.copyfile(model_file, beside)
        shutil.copyfile(out_dir / "manifest.json", beside.with_suffix(".json"))
        log.info("Copied beside the checkpoint: %s", beside)
    check = manifest["verification"]
    log.info(
        "Exported %s to %s (verified on %d samples: max |diff| %.2g, argmax agree %.4f)",
        fmt, model_file, check["samples"], check["max_abs_diff"], check["argmax_agree"],
    )  # fmt: skip
    return manifest


@entry_point("export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    export(cfg)


if __name__ == "__main__":
    main()

__all__ = ["export", "ExportError"]
