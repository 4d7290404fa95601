"""Issue 12's done-when checks on the real datasets (slow): predict's top-1 accuracy equals eval's on the
same test inputs (100 MNIST test images, 30 FSDD test WAVs, 100 SST-2 dev sentences), and the exported ONNX
model through ONNX Runtime gives identical top-1 labels."""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from bigmodel.eval import evaluate
from bigmodel.export import export
from bigmodel.predict import predict
from bigmodel.train import train
from tests.conftest import QUIET, compose_cfg

SMALL = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=30",
    "+trainer.limit_val_batches=2",
    "logger=csv",
]


def _mnist_inputs(data: Path, folder: Path, n: int) -> list[str]:
    x = np.frombuffer(gzip.open(data / "mnist/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    y = np.frombuffer(gzip.open(data / "mnist/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    folder.mkdir()
    for i in range(n):
        Image.fromarray(x[i * 784 : (i + 1) * 784].reshape(28, 28).copy(), "L").save(folder / f"{i:04d}.png")
    return [str(v) for v in y[:n]]


def _fsdd_inputs(data: Path, folder: Path, n: int) -> list[str]:
    # the standard test split in the DataModule's order: takes 0-4, sorted by path
    test = [p for p in sorted((data / "fsdd/recordings").glob("*.wav")) if int(p.stem.split("_")[2]) < 5][:n]
    folder.mkdir()
    for i, p in enumerate(test):
        os.symlink(p, folder / f"{i:04d}_{p.name}")
    return [p.name.split("_")[0] for p in test]


def _sst2_inputs(data: Path, folder: Path, n: int) -> list[str]:
    with open(data / "sst2/dev.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1 : n + 1]
    folder.mkdir()
    (folder / "dev.txt").write_text("".join(r[0].strip() + "\n" for r in rows), encoding="utf-8")
    names = {"0": "negative", "1": "positive"}
    return [names[r[1]] for r in rows]


CASES = [
    ("mnist_cnn", _mnist_inputs, 100),
    ("spoken_digits_cnn", _fsdd_inputs, 30),
    ("sst2_transformer", _sst2_inputs, 100),
]


@pytest.mark.slow
@pytest.mark.parametrize(("experiment", "make_inputs", "n"), CASES, ids=[c[0] for c in CASES])
def test_predict_matches_eval_and_onnx_matches_torch(shared_data, tmp_path, experiment, make_inputs, n):
    metrics = train(compose_cfg(tmp_path / "train", [*QUIET, f"experiment={experiment}", *SMALL]))
    ckpt = metrics["last_ckpt_path"]
    GlobalHydra.instance().clear()
    # micro_batch_size, not batch_size: the training run pinned it (apply_batch_plan) and it wins
    ev = evaluate(compose_cfg(tmp_path / "eval", [f"ckpt_path={ckpt}", f"+data.micro_batch_size={n}",
                                                  "+trainer.limit_test_batches=1", "logger=csv"], "eval"))  # fmt: skip
    labels = make_inputs(shared_data, tmp_path / "inputs", n)
    src = tmp_path / "inputs" / ("dev.txt" if experiment.startswith("sst2") else "")
    rows = predict(
        compose_cfg(
            tmp_path / "pred", [f"ckpt_path={ckpt}", f"inputs={src}", "progress_bar=false"], "predict"
        )
    )
    assert len(rows) == n and not any(r["error"] for r in rows)
    acc = sum(r["label"] == y for r, y in zip(rows, labels, strict=True)) / n
    assert acc == pytest.approx(float(ev["test/acc"]), abs=1e-6), (acc, float(ev["test/acc"]))

    manifest = export(
        compose_cfg(tmp_path / "export", [f"ckpt_path={ckpt}", "format=onnx", "verify_samples=256"], "export")
    )
    assert manifest["verification"]["passed"]
    ort_rows = predict(compose_cfg(tmp_path / "pred_ort", [f"ckpt_path={ckpt}", f"inputs={src}", "backend=onnxruntime",
                                                           "progress_bar=false"], "predict"))  # fmt: skip
    assert [r["label"] for r in ort_rows] == [r["label"] for r in rows]
