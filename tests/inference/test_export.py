"""bigmodel.export: ONNX (verified with ONNX Runtime) and pt2 on a real digits checkpoint, the manifest, the
onnxruntime predict backend, and the error for an op the exporter rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from bigmodel.data.download import sha256_file
from bigmodel.export import export
from bigmodel.inference.exporting import ExportError, compare, dynamic_shapes, to_onnx, trace, verify
from bigmodel.predict import predict
from bigmodel.utils.errors import ConfigError


@pytest.fixture(scope="module")
def onnx_export(digits_ckpt, tmp_path_factory):
    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        tmp_path_factory.mktemp("export"), [f"ckpt_path={digits_ckpt}", "format=onnx"], "export"
    )
    return export(cfg), Path(cfg.paths.output_dir)


def test_onnx_export_writes_model_and_manifest(onnx_export, digits_ckpt):
    manifest, out = onnx_export
    assert (out / "export" / "onnx" / "model.onnx").is_file()
    assert json.loads((out / "export" / "onnx" / "manifest.json").read_text()) == manifest
    assert manifest["source_checkpoint"]["sha256"] == sha256_file(digits_ckpt)
    assert manifest["inputs"] == [{"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "uint8"}]
    assert manifest["class_names"] == [str(i) for i in range(10)] and manifest["opset"] >= 18
    check = manifest["verification"]
    assert check["passed"] and check["samples"] >= 200 and check["max_abs_diff"] <= 1e-4
    assert manifest["preprocessing"]["kind"] == "image" and manifest["preprocessing"]["image_size"] == 8
    assert digits_ckpt.with_suffix(".onnx").is_file()  # the copy predict/serve find


def test_onnxruntime_backend_gives_the_torch_predictions(onnx_export, make_cfg, digits_ckpt, digit_pngs):
    rows = {}
    for backend in ("torch", "onnxruntime"):
        cfg = make_cfg(
            [
                f"ckpt_path={digits_ckpt}",
                f"inputs={digit_pngs[0]}",
                f"backend={backend}",
                "progress_bar=false",
            ],
            config_name="predict",
        )
        rows[backend] = predict(cfg)
    assert [r["label"] for r in rows["torch"]] == [r["label"] for r in rows["onnxruntime"]]
    for a, b in zip(rows["torch"], rows["onnxruntime"], strict=True):
        assert a["prob"] == pytest.approx(b["prob"], abs=1e-5)


def test_pt2_export_runs_and_is_verified(make_cfg, digits_ckpt):
    manifest = export(make_cfg([f"ckpt_path={digits_ckpt}", "format=pt2"], config_name="export"))
    assert manifest["file"] == "model.pt2" and manifest["verification"]["passed"]
    with pytest.raises(ConfigError, match="format='tflite' is not one of"):
        export(make_cfg([f"ckpt_path={digits_ckpt}", "format=tflite"], config_name="export"))


def test_onnxruntime_backend_without_an_export_says_how(make_cfg, tmp_path, digits_ckpt, digit_pngs):
    cfg = make_cfg([f"ckpt_path={digits_ckpt}", f"inputs={digit_pngs[0]}", "backend=onnxruntime",
                    f"model_path={tmp_path}/none.onnx"], config_name="predict")  # fmt: skip
    with pytest.raises(ConfigError, match="make export ckpt_path=.* format=onnx"):
        predict(cfg)


@torch.library.custom_op("bigmodel_test::wobble", mutates_args=())
def wobble(x: torch.Tensor) -> torch.Tensor:
    return x.sin()


@wobble.register_fake
def _(x):
    return torch.empty_like(x)


class Wobbly(nn.Module):
    """A block using an op that has no ONNX translation."""

    def forward(self, x):
        return wobble(x)


def test_an_op_the_exporter_rejects_names_the_op_and_the_module(tmp_path):
    net = nn.Sequential(nn.Linear(4, 4), Wobbly()).eval()
    ex = torch.randn(2, 4)
    ep = trace(net, ex, dynamic_shapes("image", ex))
    with pytest.raises(ExportError, match=r"bigmodel_test.*wobble.*Wobbly"):
        to_onnx(ep, tmp_path / "m.onnx", None)


def test_verification_fails_loudly_when_outputs_differ():
    net = nn.Linear(3, 2)
    batches = [torch.randn(4, 3)]
    assert verify(net, net, batches)["passed"]
    with pytest.raises(ExportError, match="does not reproduce eager PyTorch"):
        verify(net, lambda x: net(x) + 1e-2, batches)
    assert compare(torch.tensor([[100.0, 0.0]]), torch.tensor([[100.005, 0.0]]), 1e-4, 0.999)["passed"]
