"""bigmodel.export of a language model (issue #12): a tiny gpt_nano trained a few steps on the real Tiny
Shakespeare, exported to ONNX (verified with ONNX Runtime) and pt2; predict / serve ``backend=onnxruntime``
run the same sampling loop as ``backend=torch`` and give the same text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from bigmodel.data.download import sha256_file
from bigmodel.export import export
from bigmodel.inference.backends import OnnxRuntimeModule, fit_window
from bigmodel.inference.loader import load_model
from bigmodel.predict import predict
from bigmodel.serve import ModelAPI
from bigmodel.train import train
from tests.conftest import QUIET, SHARED_DATA, compose_cfg

BLOCK = 32
PROMPTS = "ROMEO:\nFirst Citizen:\n"


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory) -> Path:
    """``last.ckpt`` of gpt_nano (4 x 128, 0.8M parameters) after 4 steps on Tiny Shakespeare, block 32."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set BIGMODEL_SHARED_DATA)")
    cfg = compose_cfg(tmp_path_factory.mktemp("lm_run"), [
        *QUIET, "experiment=shakespeare_char_gpt", f"data.block_size={BLOCK}", "data.val_windows=8",
        "trainer.max_steps=4", "trainer.val_check_interval=4", "+trainer.limit_val_batches=1",
        "model.sample.max_new_tokens=0", "callbacks.media_text=null", "callbacks.early_stopping=null",
        "test=false",
    ])  # fmt: skip
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return Path(metrics["last_ckpt_path"])


def _export(ckpt: Path, tmp: Path, fmt: str) -> tuple[dict, Path]:
    cfg = compose_cfg(tmp, [f"ckpt_path={ckpt}", f"format={fmt}", "verify_samples=8", "verify_batch_size=4"],
                      "export")  # fmt: skip
    manifest = export(cfg)
    GlobalHydra.instance().clear()
    return manifest, Path(cfg.paths.output_dir) / "export" / fmt


@pytest.fixture(scope="module")
def onnx_lm(lm_ckpt, tmp_path_factory):
    return _export(lm_ckpt, tmp_path_factory.mktemp("lm_onnx"), "onnx")


def test_lm_onnx_export_writes_model_and_manifest_and_verifies(onnx_lm, lm_ckpt):
    manifest, out = onnx_lm
    assert (out / "model.onnx").is_file()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["source_checkpoint"]["sha256"] == sha256_file(lm_ckpt)
    assert manifest["inputs"] == [{"name": "input", "shape": ["batch", "seq"], "dtype": "int64"}]
    assert manifest["outputs"] == [{"name": "logits", "shape": ["batch", "seq", 65], "dtype": "float32"}]
    assert manifest["sequence_axis"] == {"axis": "dynamic", "min": 1, "max": BLOCK}
    assert manifest["block_size"] == BLOCK and manifest["vocab_size"] == 65 and manifest["opset"] >= 18
    saved = torch.load(lm_ckpt, weights_only=True)["tokenizer"]
    assert manifest["preprocessing"]["tokenizer"] == saved and manifest["preprocessing"]["kind"] == "lm"
    check = manifest["verification"]
    # 8 real test windows of 32 tokens, plus two rows cut to 1 and 16 tokens (the dynamic axis)
    assert check["passed"] and check["runtime"] == "onnxruntime" and check["lengths"] == [1, 16, BLOCK]
    assert check["samples"] == 8 * BLOCK + 2 * 1 + 2 * 16
    assert check["max_abs_diff"] <= 1e-4 and check["argmax_agree"] == 1.0
    assert lm_ckpt.with_suffix(".onnx").is_file() and lm_ckpt.with_suffix(".json").is_file()
    # the graph itself takes any batch and any length 1..block_size
    ort = OnnxRuntimeModule(out / "model.onnx")
    net = load_model(lm_ckpt).module.net
    for shape in ((3, 5), (1, BLOCK)):
        ids = torch.randint(0, 65, shape)
        got = ort.logits(ids)
        assert got.shape == (*shape, 65)
        torch.testing.assert_close(got, net(ids).detach(), atol=1e-4, rtol=1e-4)


CASES = {"greedy": {"top_k": 1}, "sampled": {"top_k": None, "temperature": 1.0}}


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_predict_and_serve_continue_like_torch(onnx_lm, lm_ckpt, tmp_path, case):
    """40 new tokens after a 6-14 char prompt: the loop crops past block_size=32 on both backends."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS)
    settings = {"max_new_tokens": 40, "seed": 5, **CASES[case]}
    overrides = [f"generate.{k}={'null' if v is None else v}" for k, v in settings.items()]
    rows = {}
    for backend in ("torch", "onnxruntime"):
        cfg = compose_cfg(tmp_path / backend, [
            f"ckpt_path={lm_ckpt}", f"inputs={prompts}", f"backend={backend}", "progress_bar=false", *overrides,
        ], "predict")  # fmt: skip
        rows[backend] = predict(cfg)
        GlobalHydra.instance().clear()
    texts = [r["label"] for r in rows["torch"]]
    assert len(texts) == 2 and all(len(t) == 40 for t in texts) and not any(r["error"] for r in rows["torch"])
    assert [r["label"] for r in rows["onnxruntime"]] == texts
    # serve: one dynamic batch of both prompts is batch 0, as in predict
    api = ModelAPI(str(lm_ckpt), "onnxruntime", None, None, 3, settings, max_batch_size=4)
    api.setup("cpu")
    batch = [api.decode_request({"text": p}) for p in PROMPTS.splitlines()]
    assert [row["label"] for row in api.predict(batch)] == texts


def test_pt2_export_loads_and_gives_the_same_logits(lm_ckpt, tmp_path):
    manifest, out = _export(lm_ckpt, tmp_path, "pt2")
    assert manifest["verification"]["passed"] and manifest["opset"] is None
    assert manifest["verification"]["runtime"].startswith("torch.export.load")
    program = torch.export.load(str(out / "model.pt2")).module()
    net = load_model(lm_ckpt).module.net
    for shape in ((2, 1), (2, 7), (1, BLOCK)):
        ids = torch.randint(0, 65, shape)
        with torch.no_grad():
            want, got = net(ids), program(ids)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        assert torch.equal(got.argmax(-1), want.argmax(-1))


def test_fixed_window_fallback_right_pads_without_changing_logits(lm_ckpt):
    """The fixed (1, block_size) fallback pads each row with id 0: causal attention keeps positions < T."""
    net = load_model(lm_ckpt).module.net
    calls = []

    def window_only(ids):
        calls.append(tuple(ids.shape))
        return net(ids)

    ids = torch.randint(0, 65, (2, 9))
    with torch.no_grad():
        got = fit_window(window_only, BLOCK, one_row=True)(ids)
        torch.testing.assert_close(got, net(ids), atol=1e-5, rtol=1e-5)
    assert calls == [(1, BLOCK), (1, BLOCK)]
