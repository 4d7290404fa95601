"""Collect predict inputs: ``inputs=<file|folder|glob|->`` and ``text="..."``, as named items.

An item is ``(name, source)`` where ``source`` is a file path or, for text models, the text itself.
A text file given to a text model yields one item per non-empty line (``<file>:<line>``); ``-`` reads
stdin (lines of text for text models, file paths otherwise).
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

from bigmodel.inference.preprocess import InputError, Preprocessor, input_kind
from bigmodel.utils.errors import ConfigError

Item = tuple[str, str, bool]  # (name, file path or text, is_text)


def _text_lines(path: Path) -> list[Item]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"inputs={path}: cannot read it as UTF-8 text ({e}).") from None
    return [(f"{path}:{i + 1}", line, True) for i, line in enumerate(lines) if line.strip()]


def collect(inputs: str | None, text: str | None, pre: Preprocessor, describe: str) -> list[Item]:
    """The items to predict, in a stable order (folders and globs sorted).

    Raises:
        ConfigError: neither ``inputs`` nor ``text``; a path that matches nothing; ``text=`` for a model
            that does not read text; or files that are all another kind than the model takes (naming both).
    """
    takes_text = pre.kind in ("text", "lm")
    items: list[Item] = []
    if text not in (None, ""):
        if not takes_text:
            raise ConfigError(
                f"text=... is for text models; the checkpoint is {describe}. Pass inputs=<file|folder>."
            )
        items.append(("text:0", str(text), True))
    if inputs in (None, ""):
        if not items:
            raise ConfigError(
                'Nothing to predict: pass inputs=<file|folder|glob|-> (or text="..." for text models).'
            )
        return items
    if inputs == "-":
        lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        if takes_text:
            return items + [(f"stdin:{i + 1}", line, True) for i, line in enumerate(lines)]
        paths = [Path(line.strip()) for line in lines]
    else:
        p = Path(str(inputs)).expanduser()
        if p.is_dir():
            paths = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        elif p.is_file():
            paths = [p]
        else:
            paths = sorted(Path(q) for q in glob.glob(str(p), recursive=True) if Path(q).is_file())
            if not paths:
                raise ConfigError(
                    f"inputs={inputs}: no such file or folder, and no file matches it as a glob."
                )
    kinds = {input_kind(q) for q in paths}
    if takes_text:
        for q in paths:
            if input_kind(q) != "text" and len(paths) == 1:
                raise ConfigError(
                    f"inputs={q} is {input_kind(q) or 'not a text file'}, but the checkpoint is {describe}, "
                    'which reads text: pass a .txt file with one sample per line, or text="...".'
                )
            items += _text_lines(q) if input_kind(q) == "text" else [(str(q), str(q), False)]
        return items
    if paths and pre.kind not in kinds:
        found = ", ".join(sorted(k or "unknown" for k in kinds))
        raise ConfigError(
            f"inputs={inputs} holds {found} files, but the checkpoint is {describe}, which takes {pre.kind} "
            f"files ({', '.join('.' + e for e in pre.extensions)})."
        )
    return items + [(str(q), str(q), False) for q in paths]


def load_item(item: Item, pre: Preprocessor) -> object:
    """The raw sample of one item.

    Raises:
        InputError: unreadable, empty, or another kind than the model takes (the message names both).
    """
    name, source, is_text = item
    if is_text:
        return pre.load_text(source)
    kind = input_kind(source)
    if kind != pre.kind:
        raise InputError(
            f"{name} is {'a ' + kind + ' file' if kind else 'not a known file type'}, but this is a {pre.kind} "
            f"model (it takes {', '.join('.' + e for e in pre.extensions)})"
        )
    return pre.load_file(source)
