"""Known console noise the user cannot act on, filtered one message at a time (never a blanket ignore).

Every entry point applies this through :func:`bigmodel.utils.cli.entry_point`; ``extras.ignore_warnings``
switches it (``true``, the default: drop the messages below; ``false``: show everything, e.g. to report a
bug upstream). What is dropped, each matched by its text *and* where it comes from:

- Lightning's "💡 Tip" advertisements for litlogger / litmodels (``rank_zero_info`` from the logger and
  callback connectors, logger ``lightning.pytorch.utilities.rank_zero``);
- Lightning's "Trainer already configured with model summary callbacks" (we configure a Rich summary on
  purpose; same logger);
- torch's ``FutureWarning`` "`isinstance(treespec, LeafSpec)` is deprecated", raised from Lightning's own
  ``lightning.pytorch.utilities._pytree`` (nothing in our code to change);
- alembic's 8 "setup plugin alembic.autogenerate.*" / "alembic.ext.*" INFO lines (its built-in plugins),
  printed when an Optuna sweep imports its storage (logger ``alembic.runtime.plugins``).
"""

from __future__ import annotations

import logging
import re
import warnings

# (logger name, module of the calling code (record.module: file stem), message regex)
KNOWN_LOG_LINES: tuple[tuple[str, str, str], ...] = (
    ("lightning.pytorch.utilities.rank_zero", "logger_connector", r"💡 Tip: .*litlogger"),
    ("lightning.pytorch.utilities.rank_zero", "callback_connector", r"💡 Tip: .*litmodels"),
    (
        "lightning.pytorch.utilities.rank_zero",
        "callback_connector",
        r"Trainer already configured with model summary callbacks",
    ),
    ("alembic.runtime.plugins", "plugins", r"setup plugin alembic\."),
)
# (message regex, category, module regex) as for warnings.filterwarnings
KNOWN_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
    ),
)


class KnownNoise(logging.Filter):
    """Drops the records of one logger whose calling module and message match a known pattern."""

    def __init__(self, patterns: list[tuple[str, str]]) -> None:
        super().__init__()
        self.patterns = [(module, re.compile(msg)) for module, msg in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(record.module == m and p.match(text) for m, p in self.patterns)


_installed: dict[str, list] = {"filters": [], "warnings": []}


def apply(quiet: bool = True) -> None:
    """Drop the known noise (``quiet``) or show everything (``not quiet``). Idempotent; call it again
    to switch. Filters sit on the exact loggers, so Hydra's logging (re)configuration keeps them."""
    remove()
    if not quiet:
        return
    by_logger: dict[str, list[tuple[str, str]]] = {}
    for name, module, msg in KNOWN_LOG_LINES:
        by_logger.setdefault(name, []).append((module, msg))
    for name, patterns in by_logger.items():
        f = KnownNoise(patterns)
        logging.getLogger(name).addFilter(f)
        _installed["filters"].append((name, f))
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
        _installed["warnings"].append(warnings.filters[0])


def remove() -> None:
    """Take every filter :func:`apply` installed off again."""
    for name, f in _installed["filters"]:
        logging.getLogger(name).removeFilter(f)
    for entry in _installed["warnings"]:
        if entry in warnings.filters:
            warnings.filters.remove(entry)
    _installed["filters"].clear()
    _installed["warnings"].clear()
