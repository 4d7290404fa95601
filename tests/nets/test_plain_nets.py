"""Nets are plain ``nn.Module``s, used outside Hydra too: no Lightning, Hydra or config-error imports, and no
Hydra config path (``model.net.pooling``) in any message; the entry points add the path (models.build)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bigmodel.nets

NETS_DIR = Path(bigmodel.nets.__file__).parent
FORBIDDEN_IMPORTS = ("lightning", "pytorch_lightning", "hydra", "omegaconf", "bigmodel.utils.errors")
# a config path as the user types it: model.net.pooling, data.image_size, ${data.num_classes}
CONFIG_PATH = re.compile(r"\$\{|\b(model|data|trainer|callbacks|net|frontend)\.[a-z_]+\b(?!\()")


def _modules() -> list[Path]:
    return sorted(NETS_DIR.glob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_every_net_module_is_checked():
    assert {"small_cnn.py", "big_mlp.py", "audio_resnet.py", "hf_encoder.py", "audio_frontend.py"} <= {
        p.name for p in _modules()
    }


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_net_module_knows_nothing_of_lightning_or_hydra(path):
    tree = ast.parse(path.read_text())
    bad = [n for n in _imports(tree) if n.split(".")[0] in FORBIDDEN_IMPORTS or n in FORBIDDEN_IMPORTS]
    # nets import only each other (the shared transformer blocks), never models/, data/ or utils/
    bad += [n for n in _imports(tree) if n.split(".")[0] == "bigmodel" and not n.startswith("bigmodel.nets")]
    assert not bad, f"{path.name} imports {bad}"
    paths = [
        (node.lineno, m.group(0))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for m in [CONFIG_PATH.search(node.value)]
        if m
    ]
    assert not paths, f"{path.name} names config paths: {paths}"


def test_the_checks_catch_a_config_path_and_an_import():
    # the two patterns above must be able to fail
    assert CONFIG_PATH.search("model.net.pooling='max' is not one of: cls, mean.")
    assert CONFIG_PATH.search("must divide data.image_size=32")
    assert not CONFIG_PATH.search("pooling='max' is not one of: cls, mean; use net.apply(fn)")
    tree = ast.parse("from bigmodel.utils.errors import ConfigError\nimport lightning as L\n")
    assert _imports(tree) == ["bigmodel.utils.errors", "lightning"]
