"""The README's layout section names every package folder and entry point that exists (issue #10)."""

from __future__ import annotations

import re

from bigmodel.utils.resolvers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "bigmodel"


def _layout() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    m = re.search(r"^## Layout\n+```\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no '## Layout' code block"
    return m.group(1)


def test_layout_names_every_package_folder_and_entry_point():
    layout = _layout()
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    missing = sorted(f for f in folders if not re.search(rf"^\s+{f}/\s", layout, re.M))
    assert not missing, f"README layout lacks the folders {missing}"
    entry_points = {p.name for p in PACKAGE.glob("*.py") if "def main" in p.read_text()}
    assert entry_points, "no entry point found"
    assert not sorted(e for e in entry_points if e not in layout), "README layout lacks an entry point"


def test_layout_names_nothing_that_is_gone():
    named = re.findall(r"^\s+(\w+)/\s", _layout(), re.M)
    gone = [n for n in named if not (PACKAGE / n).is_dir()]
    assert not gone, f"README layout names folders that do not exist: {gone}"
