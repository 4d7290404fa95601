"""The README's `make` commands parse as Hydra overrides the way make hands them over (each `key=value`
verbatim): a value with a comma and no Hydra quotes would be a sweep, and the command would fail."""

from __future__ import annotations

import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from bigmodel.utils.resolvers import PROJECT_ROOT

# targets whose runs are single jobs (no -m): every override must be a plain value, not a sweep
TARGETS = (
    "train",
    "eval",
    "predict",
    "export",
    "serve",
    "compress",
    "explain",
    "generate",
    "estimate",
    "compare",
)


def readme_commands() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if re.match(rf"make ({'|'.join(TARGETS)})\b", ln) and "-m" not in ln.split()]


def overrides(command: str) -> list[str]:
    command = re.sub(r"<[^<>]*>", "x", command)  # placeholders such as <run> stand for a user's value
    words = shlex.split(command, comments=True)[2:]
    return [w for w in words if "=" in w and not w.startswith(("ARGS=", "PYTHON="))]


def test_readme_has_make_commands_with_text():
    assert any("text=" in c for c in readme_commands())  # the check below has something to check


@pytest.mark.parametrize("command", [c for c in readme_commands() if "," in c])
def test_readme_command_with_a_comma_is_no_sweep(command):
    parser = OverridesParser.create()
    for o in parser.parse_overrides(overrides(command)):
        assert not o.is_sweep_override(), f"{o.input_line!r} in the README is a sweep for Hydra: {command}"
