"""The layering rules of issue #10, read from the code's syntax trees (imports and attribute accesses, not text):

- ``nets/`` are plain ``nn.Module``s: no Lightning, Hydra or OmegaConf, no ``bigmodel.utils.errors``, and no
  Hydra config path (``model.net.pooling``) in a string; the entry points add the config path.
- ``data/`` does not import ``models/`` or ``nets/``; ``models/`` does not import ``data/``.
- No ``src`` file touches a private (``_name``) attribute of another object, or a private Lightning attribute
  through ``self`` in a subclass of a Lightning class, except in the isolated functions of ``ALLOWED``, each
  guarded by a test that fails when that internal changes.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "bigmodel"

# (file relative to src/bigmodel, function) -> why it may touch an internal, and its guard test
ALLOWED = {
    ("loggers/wandb_logger.py", "_wandb_init_kwargs"): (
        "WandbLogger has no public setter for wandb.init's arguments after construction (lightning 2.6.6); "
        "tests/loggers/test_wandb_logger.py::test_wandb_init_kwargs_reach_wandb_init"
    ),
}
# underscore names that the standard library documents as public API
STDLIB_PUBLIC = {"os._exit"}
# a Hydra config path of our groups, e.g. "model.net.pooling" or "data.batch_size"
CONFIG_PATH = re.compile(r"\b(model|data|trainer|callbacks|logger|paths|extras|net)\.[a-z_]+[a-z0-9_.]*")


def _files(sub: str = "") -> list[Path]:
    return sorted((SRC / sub).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _module_name(path: Path) -> str:
    parts = ["bigmodel", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved), with ``from a import b`` giving
    both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _imports_any(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported_modules(path) if any(m == p or m.startswith(p + ".") for p in prefixes))


def _pretend(monkeypatch, path: Path, text: str) -> None:
    """Make the readers below see ``text`` as the contents of ``path``."""
    original = _tree
    monkeypatch.setitem(globals(), "_tree", lambda p: ast.parse(text) if p == path else original(p))


def test_import_reader_sees_every_spelling_of_an_import(monkeypatch):
    """The layering rules can fail: relative, aliased and ``from`` imports are all found."""
    path = SRC / "data" / "probe.py"
    _pretend(
        monkeypatch,
        path,
        "from ..nets import cnn\nimport lightning as L\nfrom bigmodel.models.optim import x\n",
    )
    assert _imports_any(path, ("bigmodel.nets",)) == ["bigmodel.nets", "bigmodel.nets.cnn"]
    assert _imports_any(path, ("lightning",)) == ["lightning"]
    assert _imports_any(path, ("bigmodel.models",)) == ["bigmodel.models.optim", "bigmodel.models.optim.x"]
    assert _imports_any(path, ("bigmodel.data",)) == []


def _violations(sub: str, banned: tuple[str, ...]) -> list[str]:
    return [f"{_rel(p)} imports {found}" for p in _files(sub) if (found := _imports_any(p, banned))]


def test_nets_know_nothing_of_lightning_hydra_or_omegaconf():
    assert not _violations("nets", ("lightning", "pytorch_lightning", "hydra", "omegaconf"))


def test_nets_raise_plain_errors():
    """Nets raise ValueError/TypeError naming the argument, not bigmodel's ConfigError."""
    assert not _violations("nets", ("bigmodel.utils.errors",))


def _string_constants(tree: ast.Module) -> list[tuple[int, str]]:
    """String literals (f-string parts included) that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_nets_name_no_config_path_in_messages():
    hits = [
        f"{_rel(p)}:{line}: {text!r}"
        for p in _files("nets")
        for line, text in _string_constants(_tree(p))
        if CONFIG_PATH.search(text)
    ]
    assert not hits, "nets name Hydra config paths (the entry points add them):\n" + "\n".join(hits)


def test_data_does_not_import_models_or_nets():
    assert not _violations("data", ("bigmodel.models", "bigmodel.nets"))


def test_models_do_not_import_data():
    assert not _violations("models", ("bigmodel.data",))


def test_nets_import_only_nets_of_bigmodel():
    """Nets import each other (the shared transformer blocks), never models/, data/, utils/ or loggers/."""
    bad = [
        f"{_rel(p)} imports {m}"
        for p in _files("nets")
        for m in _imports_any(p, ("bigmodel",))
        if not (m == "bigmodel.nets" or m.startswith("bigmodel.nets."))
    ]
    assert not bad


def test_tokenizers_are_below_data_and_models():
    """Tokenizers are shared by data, models and generate, so they import none of them."""
    path = SRC / "tokenizers.py"
    assert path.is_file()
    assert not _imports_any(path, ("bigmodel.data", "bigmodel.models", "bigmodel.nets"))


def _is_private(name: str) -> bool:
    """``_name`` but not ``__dunder__`` nor Hydra's ``_target_``-style keys."""
    return name.startswith("_") and not (name.endswith("_") and len(name) > 2)


def _functions_by_line(tree: ast.Module) -> list[tuple[int, int, str]]:
    return [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def _allowed(path: Path, line: int) -> bool:
    return any(
        (_rel(path), name) in ALLOWED and start <= line <= end
        for start, end, name in _functions_by_line(_tree(path))
    )


def private_accesses(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``/``super()``, and ``from m import _name`` or imports of
    private modules (``a._b``), outside :data:`ALLOWED`."""
    hits = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            base = node.value
            own = (isinstance(base, ast.Name) and base.id in ("self", "cls")) or (
                isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
            )
            documented = ast.unparse(node) in STDLIB_PUBLIC
            if not own and not documented and not _allowed(path, node.lineno):
                hits.append(f"{_rel(path)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            names = [a.name for a in node.names if _is_private(a.name)]
            if any(_is_private(p) for p in node.module.split(".")) or names:
                hits.append(f"{_rel(path)}:{node.lineno}: from {node.module} import {names or '...'}")
    return hits


def test_private_access_reader_can_fail(monkeypatch):
    path = SRC / "callbacks" / "probe.py"
    text = (
        "from lightning.fabric.utilities.cloud_io import _atomic_save\n"
        "def f(trainer, cfg):\n"
        "    return trainer._logger_connector, cfg._target_, self._mine, super()._loader, x.__dict__\n"
    )
    _pretend(monkeypatch, path, text)
    assert private_accesses(path) == [
        "callbacks/probe.py:1: from lightning.fabric.utilities.cloud_io import ['_atomic_save']",
        "callbacks/probe.py:3: trainer._logger_connector",
    ]


def test_config_path_pattern():
    assert CONFIG_PATH.search("model.net.pooling must be mean or cls")
    assert not CONFIG_PATH.search("pooling must be 'mean' or 'cls', got 'max'")


@pytest.mark.parametrize("path", _files(), ids=_rel)
def test_no_private_attributes_of_other_objects(path):
    hits = private_accesses(path)
    assert not hits, "private attributes used (use a public API, or isolate it; see ALLOWED):\n" + "\n".join(
        hits
    )


def _lightning_private_names(cls: type) -> set[str]:
    """Private names a Lightning base class of ``cls`` defines or uses through ``self``."""
    names: set[str] = set()
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith(("lightning", "pytorch_lightning")):
            continue
        names.update(n for n in vars(base) if _is_private(n))
        try:
            source = textwrap.dedent(inspect.getsource(base))
        except (OSError, TypeError):
            continue
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                if _is_private(node.attr):
                    names.add(node.attr)
    return names


def _lightning_modules() -> list[Path]:
    return [p for p in _files() if _imports_any(p, ("lightning", "pytorch_lightning"))]


@pytest.mark.parametrize("path", _lightning_modules(), ids=_rel)
def test_subclasses_do_not_use_lightnings_private_attributes_through_self(path):
    """``self._x`` in a subclass of a Lightning class, where Lightning itself defines or uses ``_x``: a private
    internal reached through inheritance (e.g. ``self._wandb_init`` in a WandbLogger subclass)."""
    module = importlib.import_module(_module_name(path))
    tree = _tree(path)
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(module, node.name, None)
        if not inspect.isclass(cls):
            continue
        theirs = _lightning_private_names(cls)
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "self"
                and sub.attr in theirs
                and not _allowed(path, sub.lineno)
            ):
                hits.append(f"{_rel(path)}:{sub.lineno}: self.{sub.attr} (defined by Lightning)")
    assert not hits, "\n".join(hits)
