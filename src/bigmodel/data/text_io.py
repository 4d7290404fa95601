"""Reading text files: UTF-8 decoding with bad-byte reporting, and TSV/CSV tables (standard CSV quoting for
comma tables, quoting off for TSV, whose texts contain stray ``"``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from bigmodel.data.folders import BadFileError
from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)


def decode_utf8(data: bytes, path: str | Path, policy: str = "warn", warn: bool = True) -> str:
    """Decode ``data`` as UTF-8. Invalid bytes are replaced by U+FFFD with a warning naming ``path`` and
    the byte offset(s), or, with ``policy="error"``, raise :class:`BadFileError` naming them."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as first:
        offsets, pos = [], 0
        while len(offsets) < 5:  # a few offsets are enough to find the problem
            try:
                data[pos:].decode("utf-8")
                break
            except UnicodeDecodeError as e:
                offsets.append(pos + e.start)
                pos += e.end
        where = f"byte offset {first.start}" + (f" (first of several: {offsets})" if len(offsets) > 1 else "")
        if policy == "error":
            raise BadFileError(
                f"{path} is not valid UTF-8 at {where}. Re-encode the file as UTF-8, or set "
                "data.on_bad_file=warn to replace invalid bytes with U+FFFD."
            ) from None
        if warn:
            log.warning("%s is not valid UTF-8 at %s; invalid bytes replaced with U+FFFD.", path, where)
        return data.decode("utf-8", errors="replace")


# Names for delimiters that a Hydra override cannot spell (`data.delimiter=,` parses as a list).
DELIMITERS = {"comma": ",", "tab": "\t", "\\t": "\t", "semicolon": ";", "pipe": "|", "space": " "}


def resolve_delimiter(delimiter: str) -> str:
    """``comma|tab|semicolon|pipe|space`` (or ``\\t`` as typed on a command line), or one character.

    Raises:
        ConfigError: anything else, naming ``data.delimiter``.
    """
    d = DELIMITERS.get(str(delimiter).lower(), str(delimiter))
    if len(d) != 1:
        raise ConfigError(
            f"data.delimiter={delimiter!r} is not one character. Use one of {', '.join(DELIMITERS)} "
            "(e.g. data.delimiter=comma), or a quoted character: \"data.delimiter=';'\"."
        )
    return d


def read_table(
    path: str | Path,
    text_column: str | int,
    label_column: str | int,
    delimiter: str = "\t",
    header: bool = True,
    quoting: str = "auto",
) -> tuple[list[str], list[str]]:
    """Texts and label strings of a TSV/CSV file (texts stripped).

    ``quoting``: ``csv`` reads fields as Python's ``csv`` module writes them (``"a, b"`` and ``""``
    escapes), ``none`` takes every character literally (SST-2 and SMS Spam texts hold stray ``"``),
    ``auto`` is ``none`` for tab-separated files and ``csv`` otherwise.

    Raises:
        ConfigError: a missing file or column, a bad delimiter/quoting, or a row with a missing/empty
            label or text (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Table {path} not found; check paths.data_dir and the data config's file names.")
    delimiter = resolve_delimiter(delimiter)
    if quoting not in ("auto", "csv", "none"):
        raise ConfigError(f"data.quoting={quoting!r}: use auto, csv or none.")
    quote_off = quoting == "none" or (quoting == "auto" and delimiter == "\t")
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if quote_off else csv.QUOTE_MINIMAL)
        cols: dict[str | int, int] = {}
        if header:
            names = next(rows, [])
            for c in (text_column, label_column):
                if isinstance(c, int):
                    cols[c] = c
                elif c in names:
                    cols[c] = names.index(c)
                else:
                    raise ConfigError(
                        f"{path} has no column {c!r} (header: {names}); fix data.text_column/label_column."
                    )
        else:
            for c in (text_column, label_column):
                if not isinstance(c, int):
                    raise ConfigError(
                        f"{path}: with data.header=false, columns are 0-based indices, not {c!r}."
                    )
                cols[c] = c
        ti, li = cols[text_column], cols[label_column]
        for row in rows:
            lineno = rows.line_num  # the row's last line (a quoted field may span lines)
            if not row or all(not v.strip() for v in row):
                continue  # blank line
            label = row[li].strip() if li < len(row) else ""
            text = row[ti].strip() if ti < len(row) else ""
            if not label or not text:
                missing = "label" if not label else "text"
                raise ConfigError(
                    f"{path}:{lineno}: row has no {missing} (column {label_column if not label else text_column!r}): "
                    f"{delimiter.join(row)[:80]!r}. Fix or delete that line."
                )
            texts.append(text)
            labels.append(label)
    return texts, labels
