"""configs/predict.yaml, export.yaml and serve.yaml compose, with the defaults the issue and CONVENTIONS.md name."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["predict", "export", "serve"])
def test_entry_config_composes(make_cfg, name):
    cfg = make_cfg(["ckpt_path=/x.ckpt"], config_name=name)
    assert cfg.task_name == name and cfg.ckpt_path == "/x.ckpt" and cfg.experiment_name is None
    if name == "predict":
        assert cfg.top_k == 3 and cfg.backend == "torch" and cfg.strict is False
    if name == "export":
        assert cfg.format == "onnx" and cfg.atol == pytest.approx(1e-4) and cfg.min_argmax_agree == 0.999
    if name == "serve":
        assert cfg.host == "127.0.0.1" and cfg.backend == "torch" and cfg.max_batch_size >= 1
        assert cfg.max_body_bytes > 0 and cfg.batch_timeout >= 0


def test_console_scripts_and_make_targets_exist():
    from bigmodel.utils.resolvers import PROJECT_ROOT

    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for name in ("predict", "export", "serve", "compress"):
        assert f'bigmodel-{name} = "bigmodel.{name}:main"' in pyproject
        assert f"\n{name}: $(STAMP)" in makefile and f" bigmodel.{name} " in makefile
