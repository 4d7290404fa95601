"""Compress a trained checkpoint: ``python -m bigmodel.compress ckpt_path=FILE method=...`` (also
``bigmodel-compress``, ``make compress``).

``method``: ``int8_dynamic`` | ``int8_weight_only`` | ``fp16`` | ``bf16`` (:mod:`bigmodel.compression.quantize`)
or ``prune`` with ``amount=0.5`` (:mod:`bigmodel.compression.pruning`, optionally fine-tuned for
``finetune.epochs`` with the mask kept). Writes ``<ckpt dir>/<stem>.<method>.ckpt`` beside the source
(``make eval`` / ``predict`` / ``serve`` accept it through the shared loader), and in the run directory
``report.json`` (nested) + ``metrics.json`` (flat): bytes on disk, parameters, sparsity, CPU latency at
batch 1 and 64 and throughput, and the real test-set metrics before and after.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from bigmodel.compression import pruning
from bigmodel.compression.measure import (
    linear_weight_bytes,
    model_batches,
    speed,
    state_dict_bytes,
    test_metrics,
)
from bigmodel.compression.quantize import METHODS, apply_method
from bigmodel.inference.loader import load_model, torch_threads
from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.io import atomic_write
from bigmodel.utils.run import entry_ckpt_path, load_checkpoint, write_metrics

log = logging.getLogger(__name__)

# training state a compressed model does not need (it is not meant to resume training)
_DROP = (
    "optimizer_states",
    "lr_schedulers",
    "loops",
    "callbacks",
    "MixedPrecision",
    "native_amp_scaling_state",
)


def output_path(ckpt_path: str, cfg: DictConfig) -> Path:
    """``cfg.output_path``, else ``<dir>/<stem>.<method>.ckpt`` (``prune50`` for ``method=prune amount=0.5``),
    or the first free ``<stem>.<method>-N.ckpt`` when that exists: runs never overwrite each other's output.

    Raises:
        ConfigError: an explicit ``output_path`` that already exists.
    """
    if cfg.get("output_path"):
        out = Path(cfg.output_path)
        if out.exists():
            raise ConfigError(f"output_path={out} already exists; choose another path or remove it first.")
        return out
    tag = f"prune{round(100 * float(cfg.amount))}" if cfg.method == "prune" else cfg.method
    p = Path(ckpt_path)
    out, n = p.with_name(f"{p.stem}.{tag}.ckpt"), 1
    while out.exists():
        n += 1
        out = p.with_name(f"{p.stem}.{tag}-{n}.ckpt")
    return out


def _datamodule(cfg: DictConfig, run_cfg: dict[str, Any]) -> L.LightningDataModule:
    """The run's own data config (its test split), composed into ``cfg`` so its interpolations
    (``${paths.data_dir}``) resolve as in ``bigmodel.eval``. The training run's data directory is used when
    it exists here and ``paths.data_dir`` / ``$BIGMODEL_DATA_DIR`` is not given."""
    given = any(o.startswith("paths.data_dir=") for o in HydraConfig.get().overrides.task)
    train_dir = run_cfg.get("data_dir")
    if not given and not os.environ.get("BIGMODEL_DATA_DIR") and train_dir and Path(train_dir).is_dir():
        cfg.paths.data_dir = train_dir
    with open_dict(cfg):
        cfg.data = OmegaConf.merge(run_cfg["data"], cfg.get("data") or {})
        # the data config may point into the model's (sst2_minilm: the tokenizer is the net's folder)
        cfg.model = run_cfg["model"]
        cfg.seed = run_cfg.get("seed", cfg.get("seed"))
    return hydra.utils.instantiate(cfg.data)


def _measure(module: L.LightningModule, dm: L.LightningDataModule | None, batches, cfg: DictConfig) -> dict:
    out: dict[str, Any] = {
        "params": pruning.count_parameters(module),
        "state_dict_bytes": state_dict_bytes(module),
        "linear_weight_bytes": linear_weight_bytes(getattr(module, "net", module)),
    }
    if cfg.method == "prune" or cfg.report_sparsity:
        out["sparsity"] = pruning.sparsity(getattr(module, "net", module))
        out["nonzero_params"] = pruning.count_parameters(module, nonzero=True)
    if batches is not None:
        out.update(speed(module, batches, tuple(cfg.batch_sizes), min_s=cfg.min_time_s))
    if dm is not None:
        out.update(test_metrics(module, dm))
    return out


def _finetune(module: L.LightningModule, dm: L.LightningDataModule, cfg: DictConfig) -> None:
    """Train the pruned model for ``finetune.epochs`` with its masks (so pruned weights stay zero)."""
    ft = cfg.finetune
    if ft.get("lr"):
        module.hparams.optimizer = {**module.hparams.optimizer, "lr": float(ft.lr)}
        module.hparams.scheduler = None  # a constant small lr: the model is already trained
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=int(ft.epochs),
        limit_train_batches=ft.get("limit_train_batches") or 1.0,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module.train()
    trainer.fit(module, datamodule=dm)
    module.eval()


def compress(cfg: DictConfig) -> dict[str, Any]:
    """Compress ``cfg.ckpt_path`` with ``cfg.method``; return (and write) the report.

    Raises:
        ConfigError: no or a missing checkpoint, an unknown method, ``amount`` outside [0, 1), or a net
            with nothing the method applies to (the message names its layer types).
    """
    started = time.time()
    if cfg.method not in METHODS:
        raise ConfigError(f"method={cfg.method!r} is not one of: {', '.join(METHODS)}.")
    if cfg.method == "prune":
        pruning.check_amount(cfg.amount, "amount")
    torch_threads(cfg.get("threads"))
    ckpt_path = entry_ckpt_path(
        cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "compress"
    )
    output_path(ckpt_path, cfg)  # an explicit output_path that exists fails now, not after the work
    loaded = load_model(ckpt_path)
    raw = load_checkpoint(ckpt_path)
    if raw.get("compression"):
        raise ConfigError(
            f"{ckpt_path} is already compressed ({raw['compression'].get('method')}); compress the original."
        )
    original = loaded.module
    dm = (
        _datamodule(cfg, loaded.run_config)
        if cfg.evaluate or cfg.batch_sizes or cfg.finetune.epochs
        else None
    )
    batches = None
    if dm is not None:
        dm.prepare_data()
        dm.setup("test")
        if cfg.batch_sizes:
            batches = model_batches(dm, max(cfg.batch_sizes))

    model = copy.deepcopy(original)
    if cfg.method == "prune":
        net = getattr(model, "net", model)
        kwargs = dict(scope=cfg.scope, structured=cfg.structured, norm=cfg.norm, dim=cfg.dim)
        pruning.prune(net, cfg.amount, permanent=not cfg.finetune.epochs, **kwargs)
        if cfg.finetune.epochs:
            _finetune(model, dm, cfg)
            pruning.make_permanent(net)
        spec = {"method": "prune", "backend": "torch.nn.utils.prune", "amount": float(cfg.amount), **kwargs}
        spec["finetune_epochs"] = int(cfg.finetune.epochs)
    else:
        spec = apply_method(model, cfg.method, cfg.get("backend"), strict=cfg.strict)
    model.eval()

    evaluate_dm = dm if cfg.evaluate else None
    before = _measure(original, evaluate_dm, batches, cfg)
    after = _measure(model, evaluate_dm, batches, cfg)

    out_path = output_path(ckpt_path, cfg)
    ckpt = {k: v for k, v in raw.items() if k not in _DROP}
    ckpt["state_dict"] = model.state_dict()
    ckpt["compression"] = {**spec, "source_ckpt": ckpt_path}
    with atomic_write(out_path, "wb") as f:
        torch.save(ckpt, f)
    agree = _reload_agreement(out_path, model, batches)

    report = {
        "ckpt_path": ckpt_path,
        "compressed_ckpt_path": str(out_path),
        "method": cfg.method,
        "spec": spec,
        "experiment": loaded.experiment,
        "threads": torch.get_num_threads(),
        "ckpt_bytes": {"before": Path(ckpt_path).stat().st_size, "after": out_path.stat().st_size},
        "before": before,
        "after": after,
        "reload_argmax_agreement": agree,
        "wall_s": round(time.time() - started, 3),
    }
    output_dir = Path(cfg.paths.output_dir)
    with atomic_write(output_dir / "report.json", "w") as f:
        f.write(json.dumps(report, indent=2) + "\n")
    write_metrics(output_dir / "metrics.json", _flat(report))
    _print_table(report)
    log.info("Compressed checkpoint: %s (report %s)", out_path, output_dir / "report.json")
    return report


@torch.inference_mode()
def _reload_agreement(path: Path, model: L.LightningModule, batches) -> float | None:
    """Reload the written checkpoint through the shared loader (as eval/predict/serve will) and return the
    fraction of argmax predictions equal to the in-memory compressed model's on the timing batch."""
    reloaded = load_model(path).module
    if not batches:
        return None
    x = batches[0][0]
    a, b = model(x), reloaded(x)
    if a.dim() > 2:  # a language model: (B, T, V)
        a, b = a.flatten(0, -2), b.flatten(0, -2)
    return round(float((a.argmax(-1) == b.argmax(-1)).float().mean()), 6)


def _flat(report: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in report.items() if not isinstance(v, dict)}
    flat["ckpt_bytes_before"], flat["ckpt_bytes_after"] = (
        report["ckpt_bytes"]["before"],
        report["ckpt_bytes"]["after"],
    )
    for stage in ("before", "after"):
        for k, v in report[stage].items():
            if k == "sparsity":
                flat[f"{stage}/sparsity_total"] = v["total"]
            elif not isinstance(v, dict):
                flat[f"{stage}/{k}"] = v
    return flat


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"compress {report['method']}: {report['experiment'] or report['ckpt_path']}")
    for col in ("", "before", "after", "ratio"):
        table.add_column(col, justify="right")
    rows = [("ckpt bytes", report["ckpt_bytes"]["before"], report["ckpt_bytes"]["after"])]
    keys = sorted(set(report["before"]) & set(report["after"]))
    rows += [
        (k, report["before"][k], report["after"][k])
        for k in keys
        if not isinstance(report["before"][k], dict)
    ]
    if "sparsity" in report["after"]:
        rows.append(
            (
                "sparsity (Linear/Conv)",
                report["before"]["sparsity"]["total"],
                report["after"]["sparsity"]["total"],
            )
        )
    for name, b, a in rows:
        ratio = f"{a / b:.3f}" if isinstance(a, int | float) and isinstance(b, int | float) and b else ""
        table.add_row(
            name,
            f"{b:g}" if isinstance(b, float) else str(b),
            f"{a:g}" if isinstance(a, float) else str(a),
            ratio,
        )
    Console().print(table)


@entry_point("compress")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    compress(cfg)


if __name__ == "__main__":
    main()
