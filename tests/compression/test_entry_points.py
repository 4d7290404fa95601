"""Issue 14's "done when" through the real entry points: every `bigmodel.compress` method's output, and a
distilled student, are taken by eval, predict and serve (its LitAPI in-process; one real server process in the
slow suite), load with ``weights_only=True``, and export or refuse with a ConfigError (exit 2) that names the
method. `make compress` passes its overrides through."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from bigmodel.compress import compress
from bigmodel.eval import evaluate
from bigmodel.export import export
from bigmodel.predict import predict
from bigmodel.serve import ModelAPI
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.compression.conftest import _train
from tests.conftest import compose_cfg
from tests.inference.conftest import digit_pngs  # noqa: F401 - the session fixture

METHODS = ["int8_dynamic", "int8_weight_only", "fp16", "bf16", "prune"]
# what export does with each output (format=onnx): None = exports and verifies, else the refusal's words
ONNX_REFUSAL = {"int8_dynamic": "method=int8_dynamic", "bf16": "method=bf16"}


def _run(fn, tmp: Path, overrides: list[str], config_name: str):
    cfg = compose_cfg(tmp, overrides, config_name)
    try:
        return fn(cfg)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def compressed(digits_mlp_ckpt, tmp_path_factory) -> dict[str, dict]:
    """The compress report of each method on the digits_mlp checkpoint (prune: 50%, fine-tuned 1 epoch)."""
    out = {}
    for method in METHODS:
        tmp = tmp_path_factory.mktemp(method)
        extra = ["amount=0.5", "finetune.epochs=1", "finetune.lr=0.001"] if method == "prune" else []
        out[method] = _run(
            compress,
            tmp,
            [f"ckpt_path={digits_mlp_ckpt}", f"method={method}", "batch_sizes=[1]", "min_time_s=0.01",
             f"output_path={tmp}/{method}.ckpt", *extra],
            "compress",
        )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def distilled(digits_cnn_ckpt, tmp_path_factory) -> str:
    """A digits_mlp student distilled from the digits_cnn teacher (`make train model=distillation ...`)."""
    metrics = _train(
        tmp_path_factory.mktemp("student"),
        "experiment=digits_mlp",
        "model=distillation",
        f"model.teacher_ckpt={digits_cnn_ckpt}",
        "trainer.max_epochs=2",
    )
    return metrics["last_ckpt_path"]


def _ckpt(name: str, compressed: dict, distilled: str) -> str:
    return distilled if name == "distillation" else compressed[name]["compressed_ckpt_path"]


@pytest.mark.parametrize("name", [*METHODS, "distillation"])
def test_eval_predict_and_serve_take_the_output(
    tmp_path,
    name,
    compressed,
    distilled,
    digit_pngs,  # noqa: F811
):
    ckpt = _ckpt(name, compressed, distilled)
    raw = torch.load(ckpt, weights_only=True)  # plain tensors (torchao's allow-listed once imported)
    assert raw.get("compression", {}).get("method") == (None if name == "distillation" else name)

    metrics = _run(evaluate, tmp_path / "eval", [f"ckpt_path={ckpt}", "logger=csv"], "eval")
    if name != "distillation":  # eval through the shared loader == compress's own measurement
        assert float(metrics["test/acc"]) == pytest.approx(compressed[name]["after"]["test/acc"], abs=1e-6)
    assert float(metrics["test/acc"]) > 0.6  # still a digit classifier (10 classes: chance is 0.1)

    folder, labels = digit_pngs
    rows = _run(
        predict, tmp_path / "pred", [f"ckpt_path={ckpt}", f"inputs={folder}", "progress_bar=false"], "predict"
    )
    assert len(rows) == len(labels) and not any(r["error"] for r in rows)
    by_name = {Path(r["path"]).name: r["label"] for r in rows}
    acc = sum(by_name[f"{i:03d}.png"] == str(y) for i, y in enumerate(labels)) / len(labels)
    assert acc > 0.6, acc

    api = ModelAPI(ckpt, "torch", None, None, 3)  # what `make serve` runs in its worker
    api.setup("cpu")
    png = (folder / "000.png").read_bytes()
    row = api.predict(api.decode_request({"image": base64.b64encode(png).decode()}))
    assert row["error"] == "" and row["label"] == by_name["000.png"]


@pytest.mark.parametrize("name", [*METHODS, "distillation"])
def test_export_exports_or_refuses_naming_the_method(tmp_path, name, compressed, distilled):
    ckpt = _ckpt(name, compressed, distilled)
    overrides = [f"ckpt_path={ckpt}", "format=onnx", "copy_beside_checkpoint=false"]
    if name in ONNX_REFUSAL:
        with pytest.raises(ConfigError, match=ONNX_REFUSAL[name]) as err:
            _run(export, tmp_path, overrides, "export")
        assert "format=pt2" in str(err.value) or "ckpt_path=" in str(err.value)  # says what to do
    else:
        manifest = _run(export, tmp_path, overrides, "export")
        assert manifest["verification"]["passed"] and manifest["verification"]["argmax_agree"] >= 0.999
        assert (manifest["compression"] or {}).get("method") == (None if name == "distillation" else name)


def test_int8_dynamic_export_is_exit_2_with_the_message(tmp_path, compressed):
    from tests.conftest import run_cli

    ckpt = compressed["int8_dynamic"]["compressed_ckpt_path"]
    proc = run_cli("bigmodel.export", f"ckpt_path={ckpt}", "format=pt2", f"paths.log_dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "method=int8_dynamic" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_make_compress_passes_its_overrides():
    out = subprocess.run(
        [
            "make",
            "-n",
            "-o",
            ".venv/.installed",
            "compress",
            "ckpt_path=/x.ckpt",
            "method=prune",
            "amount=0.3",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if "bigmodel.compress" in ln)
    assert "'ckpt_path=/x.ckpt'" in line and "'method=prune'" in line and "'amount=0.3'" in line
    assert line.index("bigmodel.compress") < line.index("'method=prune'")  # arguments of the module


@pytest.mark.slow
def test_make_compress_then_make_serve_answers(tmp_path, digits_mlp_ckpt, digit_pngs):  # noqa: F811
    """The documented commands as a user types them: `make compress`, then `make serve` on its output."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    out = tmp_path / "q.ckpt"
    subprocess.run(
        ["make", "-o", ".venv/.installed", "compress", f"ckpt_path={digits_mlp_ckpt}", "method=int8_dynamic",
         f"output_path={out}", f"paths.log_dir={tmp_path}", "batch_sizes=[1]", "min_time_s=0.01"],
        cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert torch.load(out, weights_only=True)["compression"]["method"] == "int8_dynamic"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "w")
    cmd = [
        "make",
        "-o",
        ".venv/.installed",
        "serve",
        f"ckpt_path={out}",
        f"port={port}",
        f"paths.log_dir={tmp_path}",
    ]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        png = (digit_pngs[0] / "000.png").read_bytes()
        r = httpx.post(f"{url}/predict", json={"image": base64.b64encode(png).decode()}, timeout=60)
        assert r.status_code == 200 and r.json()["error"] == "" and r.json()["label"] in list("0123456789")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make and the server it started: our own process group
        proc.wait(timeout=60)


def test_compress_resolves_a_data_config_that_points_into_the_model(tmp_path):
    """sst2_minilm's tokenizer path is ``${minilm_path:${model.net.pretrained_path}}``: compress must
    compose the run's data config with its model config (it failed with InterpolationKeyError)."""
    metrics = _train(
        tmp_path / "train", "experiment=digits_mlp", "trainer.max_epochs=1", "data.seed=${model.num_classes}"
    )
    report = _run(
        compress,
        tmp_path / "c",
        [f"ckpt_path={metrics['last_ckpt_path']}", "method=fp16", "batch_sizes=[1]", "min_time_s=0.01",
         f"output_path={tmp_path}/h.ckpt"],
        "compress",
    )  # fmt: skip
    assert report["after"]["test/acc"] == pytest.approx(report["before"]["test/acc"], abs=0.02)
