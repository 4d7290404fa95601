"""bigmodel.utils.quiet: each known message is dropped by text and origin, and everything shows again when off."""

from __future__ import annotations

import logging
import warnings

import pytest

from bigmodel.utils import quiet

LEAF = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and treespec.is_leaf()`"


def _record(logger: str, file: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(logger, logging.INFO, f"/site-packages/x/{file}.py", 1, msg, None, None)


@pytest.fixture(autouse=True)
def _restore():
    yield
    quiet.apply(True)  # what every entry point starts with


@pytest.mark.parametrize(
    "logger, file, msg",
    [
        (
            "lightning.pytorch.utilities.rank_zero",
            "logger_connector",
            "💡 Tip: try installing [litlogger](...)",
        ),
        ("lightning.pytorch.utilities.rank_zero", "callback_connector", "💡 Tip: try [litmodels](...) to"),
        (
            "lightning.pytorch.utilities.rank_zero",
            "callback_connector",
            "Trainer already configured with model summary callbacks: [RichModelSummary]. Skipping",
        ),
        ("alembic.runtime.plugins", "plugins", "setup plugin alembic.autogenerate.schemas"),
        ("alembic.runtime.plugins", "plugins", "setup plugin alembic.ext.checkconstraint_byname"),
    ],
)
def test_known_log_lines_dropped_only_when_quiet(logger, file, msg):
    quiet.apply(True)
    assert not logging.getLogger(logger).filter(_record(logger, file, msg))
    # the same words from another module, or another message from the same module, still show
    assert logging.getLogger(logger).filter(_record(logger, "our_module", msg))
    assert logging.getLogger(logger).filter(_record(logger, file, "GPU available: False, used: False"))
    quiet.apply(False)
    assert logging.getLogger(logger).filter(_record(logger, file, msg))


def _warn(module: str, on: bool) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet.apply(on)
        warnings.warn_explicit(LEAF, FutureWarning, "_pytree.py", 21, module=module)
    return seen


def test_leafspec_warning_dropped_only_from_lightning_and_only_when_quiet():
    assert _warn("lightning.pytorch.utilities._pytree", on=True) == []
    assert len(_warn("bigmodel.models.classification", on=True)) == 1  # ours would still show
    assert len(_warn("lightning.pytorch.utilities._pytree", on=False)) == 1
