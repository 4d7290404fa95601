"""The user's own CSV for text classification (issue #11): quoted CSV as Python's csv module writes it,
delimiter names a Hydra override can spell, and the README's own command run as written."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest

from bigmodel.data.text_io import read_table, resolve_delimiter
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.conftest import run_cli

LABELS = ["ham", "spam", "eggs"]


def write_quoted_csv(path: Path, n: int = 60) -> Path:
    """Texts with commas, quotes and a line break inside quoted fields: csv.writer's QUOTE_MINIMAL."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            w.writerow([f'row {i}, with "quotes", commas, and\na line break', LABELS[i % 3]])
    return path


def test_quoted_csv_is_read_as_csv(tmp_path):
    texts, labels = read_table(write_quoted_csv(tmp_path / "my.csv"), "text", "label", "comma", header=True)
    assert len(texts) == 60 and sorted(set(labels)) == sorted(LABELS)
    assert texts[1] == 'row 1, with "quotes", commas, and\na line break'


def test_tsv_keeps_quoting_off(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('text\tlabel\n"unbalanced quote\tham\nok\tspam\n', encoding="utf-8")
    texts, labels = read_table(path, "text", "label", "tab", header=True)
    assert texts == ['"unbalanced quote', "ok"] and labels == ["ham", "spam"]


@pytest.mark.parametrize(("name", "char"), [("comma", ","), ("tab", "\t"), ("\\t", "\t"), (";", ";")])
def test_delimiter_names(name, char):
    assert resolve_delimiter(name) == char


def test_bad_delimiter_names_the_key():
    with pytest.raises(ConfigError, match="data.delimiter"):
        resolve_delimiter("commas")


def readme_csv_command() -> list[str]:
    """The README's `make train experiment=sms_spam_transformer data.train_file=my.csv ...` command."""
    text = (PROJECT_ROOT / "README.md").read_text()
    m = re.search(
        r"^make train experiment=sms_spam_transformer data\.train_file=my\.csv.*?(?<!\\)$", text, re.S | re.M
    )
    assert m, "README lost its own-CSV text-classification command"
    return shlex.split(m.group(0).replace("\\\n", " "))


def test_readme_own_csv_command_runs_as_written(tmp_path):
    cmd = readme_csv_command()
    assert cmd[:2] == ["make", "train"] and "data.train_file=my.csv" in cmd
    # the README's file, written here (tests write nothing into the working tree)
    cmd[cmd.index("data.train_file=my.csv")] = f"data.train_file={write_quoted_csv(tmp_path / 'my.csv')}"
    tiny = [
        f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "extras.print_config=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "data.tokenizer.vocab_size=300",
        "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null",
    ]
    # the entry point behind `make train`, with the README's words as make hands them over (make's own
    # pass-through of `key=value` words is tests/test_cli_errors.py's)
    p = run_cli("bigmodel.train", *cmd[2:], *tiny, unset=("HYDRA_FULL_ERROR",))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (metrics_file,) = (tmp_path / "logs" / "sms_spam_transformer" / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["status"] == "completed" and "test/acc" in metrics
