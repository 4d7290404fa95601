"""Predict new inputs with a trained model: ``python -m bigmodel.predict ckpt_path=FILE inputs=<file|folder|glob|->``
(also ``text="..."``; ``bigmodel-predict``, ``make predict``).

The model and its eval preprocessing come from the checkpoint alone (:mod:`bigmodel.inference`). Inputs run
through ``trainer.predict`` in batches (the LightningModule's ``predict_step``, or ONNX Runtime with
``backend=onnxruntime``); the rows go to ``<run dir>/predictions.csv`` and the first ones to a Rich table.
An unreadable input gets a row with its ``error`` (``strict=true`` stops at the first one instead).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, RichProgressBar
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from bigmodel.inference import inputs as input_items
from bigmodel.inference.backends import predictor
from bigmodel.inference.loader import LoadedModel, load_model, torch_threads
from bigmodel.inference.preprocess import InputError
from bigmodel.inference.rows import class_rows, error_row, text_rows, write_csv
from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import entry_ckpt_path

log = logging.getLogger(__name__)


class _Items(Dataset):
    """Decodes each item when read; a bad one becomes ``(name, None, error)`` (or raises under ``strict``)."""

    def __init__(self, items: Sequence[input_items.Item], loaded: LoadedModel, strict: bool) -> None:
        self.items, self.loaded, self.strict = list(items), loaded, strict

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, Any, str]:
        name = self.items[i][0]
        try:
            return name, input_items.load_item(self.items[i], self.loaded.pre), ""
        except (InputError, ConfigError, OSError) as e:
            if self.strict:
                raise ConfigError(f"strict=true: {name}: {e}") from None
            return name, None, str(e)


class _Collate:
    """``(x, meta)``: the raw batch of the readable items (through the adapter for the torch backend;
    None when none is readable) and ``meta`` = every item's ``(name, error)`` in order."""

    def __init__(self, loaded: LoadedModel, adapt: bool) -> None:
        self.pre, self.adapt = loaded.pre, adapt

    def __call__(self, batch: list[tuple[str, Any, str]]) -> tuple[Any, list[tuple[str, str]]]:
        good = [s for _, s, err in batch if not err]
        x = self.pre.collate(good) if good else None
        if x is not None and self.adapt and isinstance(x, torch.Tensor):
            with torch.no_grad():
                x = self.pre.adapter(x)
        return x, [(name, err) for name, _, err in batch]


class RowWriter(BasePredictionWriter):
    """Turns each batch's ``predict_step`` output into rows (errors kept in input order)."""

    def __init__(self, class_names: Sequence[str] | None, top_k: int) -> None:
        super().__init__(write_interval="batch")
        self.class_names, self.top_k = class_names, top_k
        self.rows: list[dict[str, Any]] = []

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        meta = batch[1]
        ok = [name for name, err in meta if not err]
        if prediction is None:
            good = []
        elif self.class_names is None:
            good = text_rows(ok, prediction)
        else:
            good = class_rows(ok, prediction.cpu(), self.class_names, self.top_k)
        it = iter(good)
        self.rows += [error_row(name, err) if err else next(it) for name, err in meta]


def run_predict(
    loaded: LoadedModel, items: Sequence[input_items.Item], cfg: DictConfig
) -> list[dict[str, Any]]:
    """Rows for ``items`` through ``trainer.predict`` (see the module docstring)."""
    module, adapt = predictor(loaded, cfg.backend, cfg.get("model_path"), cfg.get("threads"))
    if loaded.kind == "lm":
        module.predict_settings = dict(cfg.get("generate") or {})
    names = None if loaded.kind == "lm" else loaded.class_names
    writer = RowWriter(names, int(cfg.top_k))
    loader = DataLoader(
        _Items(items, loaded, bool(cfg.strict)), batch_size=int(cfg.batch_size), shuffle=False,
        num_workers=int(cfg.num_workers), collate_fn=_Collate(loaded, adapt),
    )  # fmt: skip
    callbacks = [writer] + ([RichProgressBar()] if cfg.get("progress_bar", True) else [])
    trainer = L.Trainer(
        accelerator="cpu" if cfg.backend == "onnxruntime" else cfg.accelerator, devices=1, logger=False,
        callbacks=callbacks, enable_progress_bar=bool(cfg.get("progress_bar", True)),
        enable_model_summary=False, default_root_dir=cfg.paths.output_dir,
    )  # fmt: skip
    trainer.predict(module, dataloaders=loader, return_predictions=False)
    return writer.rows


def print_rows(rows: Sequence[dict[str, Any]], limit: int = 10) -> None:
    """A Rich table of the first ``limit`` rows."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"predictions (first {min(limit, len(rows))} of {len(rows)})")
    for col in ("path", "label", "prob", "top_k", "error"):
        table.add_column(col, overflow="fold")
    for r in rows[:limit]:
        top = ", ".join(f"{lab}:{p:.3f}" for lab, p in r["top_k"])
        prob = "" if r["prob"] is None else f"{r['prob']:.4f}"
        table.add_row(str(r["path"]), str(r["label"] or ""), prob, top, r["error"])
    Console().print(table)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Predict ``cfg.inputs`` / ``cfg.text``; returns the rows also written to ``predictions.csv``.

    Raises:
        ConfigError: no/missing checkpoint, nothing to predict, inputs of another kind than the model
            (naming both), an unknown backend, a missing ONNX model, or under ``strict`` the first bad input.
    """
    torch_threads(cfg.get("threads"))
    path = entry_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "predict")
    loaded = load_model(path)
    items = input_items.collect(cfg.get("inputs"), cfg.get("text"), loaded.pre, loaded.describe())
    rows = run_predict(loaded, items, cfg)
    out = write_csv(rows, Path(cfg.paths.output_dir) / "predictions.csv")
    print_rows(rows)
    bad = sum(1 for r in rows if r["error"])
    log.info("%d predictions (%d with errors) written to %s", len(rows), bad, out)
    return rows


@entry_point("predict")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    predict(cfg)


if __name__ == "__main__":
    main()
