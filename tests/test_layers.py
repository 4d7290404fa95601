"""Layering rules, read from the imports of every module (so they stay true):

- ``bigmodel.data`` imports neither ``bigmodel.models`` nor ``bigmodel.nets``;
- ``bigmodel.models`` does not import ``bigmodel.data``;
- ``bigmodel.tokenizers`` (used by data, models and generate alike) imports none of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bigmodel

SRC = Path(bigmodel.__file__).parent

RULES = {
    "data": ("bigmodel.models", "bigmodel.nets"),
    "models": ("bigmodel.data",),
    "tokenizers.py": ("bigmodel.data", "bigmodel.models", "bigmodel.nets"),
}


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from ... import`` names anywhere in the file (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_imported_modules_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from bigmodel.nets.hf_encoder import x\n    import bigmodel.data.text\n")
    assert {"bigmodel.nets.hf_encoder", "bigmodel.data.text"} <= imported_modules(f)


@pytest.mark.parametrize("where", sorted(RULES))
def test_layer_imports(where):
    files = [SRC / where] if where.endswith(".py") else sorted((SRC / where).rglob("*.py"))
    assert files
    bad = [
        f"{f.relative_to(SRC)} imports {m}"
        for f in files
        for m in sorted(imported_modules(f))
        if any(m == p or m.startswith(p + ".") for p in RULES[where])
    ]
    assert not bad, "; ".join(bad)
