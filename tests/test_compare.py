"""bigmodel.compare: the run table equals metrics.json, incomplete runs are listed, filters that match nothing
say so, overfitting numbers, Pareto front, W&B Table offline; slow: over real training runs."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from bigmodel.compare import compare
from bigmodel.reports.curves import overfit, read_curves
from bigmodel.reports.table import pareto_front
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET, run_cli


class ReportParser(HTMLParser):
    """Cells of ``<table id="runs">`` as ``{key: data-value}`` rows, and the ids of embedded PNGs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.images: dict[str, bytes] = {}
        self._in_runs = self._body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in_runs = a.get("id") == "runs"
        elif tag == "tbody" and self._in_runs:
            self._body = True
        elif tag == "tr" and self._in_runs and self._body:
            self.rows.append({})
        elif tag == "td" and self._in_runs:
            self.rows[-1][a["data-key"]] = a["data-value"]
        elif tag == "img" and a.get("src", "").startswith("data:image/png;base64,"):
            import base64

            self.images[a["id"]] = base64.b64decode(a["src"].split(",", 1)[1])

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_runs = self._body = False


def parse_report(path: str | Path) -> ReportParser:
    p = ReportParser()
    p.feed(Path(path).read_text())
    return p


def make_run(
    root: Path,
    experiment: str,
    metrics: dict | None,
    curves: list[dict] = (),
    tags: tuple = ("dev",),
    net: str = "bigmodel.nets.small_cnn.SmallCNN",
    params: int | None = 1000,
    name: str = "2026-01-01_00-00-00_aaaaaa",
) -> Path:
    """A run folder as bigmodel.train writes it (only the files compare reads)."""
    run = root / experiment / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    cfg = {
        "task_name": experiment,
        "tags": list(tags),
        "model": {"net": {"_target_": net}},
        "trainer": {"devices": 1},
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"name": "train"}}}))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps({"experiment": experiment, **metrics}))
    (run / "csv").mkdir()
    if params:
        (run / "csv" / "hparams.yaml").write_text(yaml.safe_dump({"run": {"params": {"total": params}}}))
    keys = sorted({k for row in curves for k in row} | {"step", "epoch"})
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in curves]
    (run / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run


def overfitting_curves() -> list[dict]:
    """Train loss falls all along; val loss falls, then rises for 3 evaluations."""
    rows = []
    for step in range(1, 61):
        rows.append({"step": step, "train/loss": 2.0 - step * 0.03})
        if step % 10 == 0:
            val = [1.5, 1.0, 0.8, 0.9, 1.1, 1.3][step // 10 - 1]
            rows.append({"step": step, "val/loss": val, "val/acc": 0.9, "epoch": step // 10 - 1})
    rows.append({"step": 60, "train/acc": 0.99, "epoch": 5})
    return rows


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    full = {"test/acc": 0.97, "val/acc_best": 0.96, "epoch": 3, "wall_s": 12.5, "perf/samples_per_sec": 1000.0,
            "perf/tflops_per_sec": 0.002, "status": "completed"}  # fmt: skip
    make_run(root, "mnist_cnn", full, overfitting_curves(), tags=("mnist",), params=72666)
    healthy = [
        {"step": s, "train/loss": 1.0 / s, **({"val/loss": 2.0 / s} if s % 5 == 0 else {})}
        for s in range(1, 21)
    ]
    make_run(root, "digits_mlp", {"test/acc": 0.92, "val/acc_best": 0.9, "epoch": 5}, healthy, params=85002,
             net="bigmodel.nets.big_mlp.BigMLP")  # fmt: skip
    make_run(root, "spoken_digits_cnn", {"test/acc": 0.99, "cpu_latency_ms": 1.5}, params=None)
    make_run(root, "sst2_transformer", None, params=500, name="2026-01-02_00-00-00_bbbbbb")  # killed
    return root


def test_table_values_equal_metrics_json(make_cfg, runs_root):
    cfg = make_cfg([f"runs={runs_root}/*/runs/*"], config_name="compare")
    result = compare(cfg)
    report = parse_report(result["report"])
    by_exp = {r["experiment"]: r for r in report.rows}
    assert set(by_exp) == {"mnist_cnn", "digits_mlp", "spoken_digits_cnn", "sst2_transformer"}
    for run in runs_root.glob("*/runs/*"):
        row = by_exp[run.parent.parent.name]
        if not (run / "metrics.json").exists():
            assert row["status"] == "incomplete" and row["test"] == ""  # listed, with "—" cells
            continue
        m = json.loads((run / "metrics.json").read_text())
        assert float(row["test"]) == pytest.approx(m["test/acc"])
        for key, col in (("val/acc_best", "best_val"), ("epoch", "epochs"), ("wall_s", "wall_s")):
            assert (float(row[col]) == pytest.approx(m[key])) if key in m else row[col] == ""
    mnist = by_exp["mnist_cnn"]
    assert int(mnist["params"]) == 72666
    assert float(mnist["flops_per_sample"]) == pytest.approx(0.002e12 / 1000)
    assert float(by_exp["spoken_digits_cnn"]["latency_ms"]) == 1.5
    assert by_exp["spoken_digits_cnn"]["params"] == ""  # no hparams.yaml: "—", not a crash
    assert mnist["overfit"] == "yes" and by_exp["digits_mlp"]["overfit"] == "no"
    html = Path(result["report"]).read_text()
    assert "sst2_transformer" in html.split('id="incomplete"')[1]
    # plots: PNGs that decode, one for each of the report's figures
    assert set(report.images) == {"test_vs_params", "test_vs_latency", "learning_curves"}
    assert all(png.startswith(b"\x89PNG") for png in report.images.values())
    rows = json.loads((Path(result["report"]).parent / "runs.json").read_text())
    assert {r["experiment"] for r in rows} == set(by_exp)


def test_overfit_numbers():
    curves = read_curves_from_rows(overfitting_curves())
    of = overfit(curves, patience=2)
    assert of.val_rises == 3 and of.train_falls and of.flagged
    assert of.gap_acc == pytest.approx(0.99 - 0.9)
    assert of.gap_loss == pytest.approx(1.3 - sum(2.0 - s * 0.03 for s in range(51, 61)) / 10)
    assert not overfit(curves, patience=4).flagged
    assert "val/loss rose 3 eval(s) in a row while train/loss fell" in of.describe(2)


def read_curves_from_rows(rows: list[dict]) -> dict:
    out: dict = {}
    for row in rows:
        for k, v in row.items():
            if k not in ("step", "epoch"):
                out.setdefault(k, []).append((row["step"], float(v)))
    return out


def test_read_curves_missing_file(tmp_path):
    assert read_curves(tmp_path / "nope.csv") == {}


def test_pareto_front():
    # (params, acc): the 3rd is beaten by the 2nd (cheaper and better)
    pts = [(1e3, 0.90), (1e4, 0.97), (1e5, 0.95), (1e6, 0.99)]
    assert pareto_front(pts, higher_is_better=True) == [0, 1, 3]
    assert pareto_front([(1, 2.0), (2, 1.0)], higher_is_better=False) == [0, 1]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("runs={root}/nothing/*", "matched no run folder"),
        ("experiment_name=cifar*", "experiment=cifar* matched none"),
        ("tags=[missing]", "tags=['missing'] matched none"),
    ],
)
def test_zero_runs_matched_names_the_filter(make_cfg, runs_root, override, message):
    cfg = make_cfg([f"runs={runs_root}/*/runs/*", override.format(root=runs_root)], config_name="compare")
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")
    ):
        compare(cfg)


def test_filters(make_cfg, runs_root):
    cfg = make_cfg([f"runs={runs_root}/*/runs/*", "tags=[mnist]"], config_name="compare")
    assert [r["experiment"] for r in compare(cfg)["rows"]] == ["mnist_cnn"]
    cfg = make_cfg(
        [f"runs={runs_root}/*/runs/*", "experiment_name=[digits_*,spoken_*]"], config_name="compare"
    )
    assert sorted(r["experiment"] for r in compare(cfg)["rows"]) == ["digits_mlp", "spoken_digits_cnn"]


def test_cli_exit_code_and_experiment_alias(tmp_path, runs_root):
    bad = run_cli(
        "bigmodel.compare", f"runs={runs_root}/*/runs/*", "experiment=nope", f"hydra.run.dir={tmp_path}/o"
    )
    assert bad.returncode == 2, bad.stderr
    assert "experiment=nope matched none" in bad.stdout + bad.stderr
    ok = run_cli(
        "bigmodel.compare",
        f"runs={runs_root}/*/runs/*",
        "experiment=mnist_cnn",
        f"hydra.run.dir={tmp_path}/o2",
    )
    assert ok.returncode == 0, ok.stderr
    assert "mnist_cnn" in ok.stdout and (tmp_path / "o2" / "report.html").is_file()


def test_wandb_table_offline(make_cfg, runs_root, tmp_path):
    cfg = make_cfg([f"runs={runs_root}/*/runs/*", "logger=wandb"], config_name="compare")
    compare(cfg)
    files = list(Path(cfg.paths.output_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert files, "no offline W&B run was written"
    table_files = list(
        Path(cfg.paths.output_dir).glob("wandb/offline-run-*/files/media/table/compare/*.table.json")
    )
    assert table_files, "the W&B Table was not logged"
    table = json.loads(table_files[0].read_text())
    assert "experiment" in table["columns"] and len(table["data"]) == 4
    col = table["columns"].index("test")
    assert sorted(r[col] for r in table["data"] if r[col] is not None) == [0.92, 0.97, 0.99]


@pytest.mark.slow
def test_compare_real_runs_three_modalities(tmp_path, shared_data):
    """6 real (tiny) training runs of vision, audio and text, then make compare over them."""
    logs = tmp_path / "logs"
    common = [
        *QUIET,
        f"paths.data_dir={shared_data}",
        f"paths.log_dir={logs}",
        f"paths.cache_dir={tmp_path}/cache",
    ]
    budgets = {
        "digits_cnn": ["trainer.max_epochs=2"],
        "digits_mlp": ["trainer.max_epochs=2"],
        "mnist_cnn": ["trainer.max_epochs=1", "+trainer.limit_train_batches=30"],
        "spoken_digits_cnn": ["trainer.max_epochs=2", "+trainer.limit_train_batches=5"],
        "sst2_transformer": ["trainer.max_epochs=2", "+trainer.limit_train_batches=20"],
        "sms_spam_transformer": ["trainer.max_epochs=1", "+trainer.limit_train_batches=10"],
    }
    for exp, extra in budgets.items():
        r = run_cli("bigmodel.train", f"experiment={exp}", *common, *extra, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("bigmodel.compare", f"paths.log_dir={logs}", f"hydra.run.dir={tmp_path}/cmp")
    assert r.returncode == 0, r.stderr[-2000:]
    report = parse_report(tmp_path / "cmp" / "report.html")
    assert len(report.rows) == 6 and {"test_vs_params", "learning_curves"} <= set(report.images)
    runs = {Path(r["path"]).name: r for r in json.loads((tmp_path / "cmp" / "runs.json").read_text())}
    for row in report.rows:
        m = json.loads((Path(runs[row["run"]]["path"]) / "metrics.json").read_text())
        assert float(row["test"]) == pytest.approx(m["test/acc"])
        assert float(row["best_val"]) == pytest.approx(m["val/acc_best"])
        assert float(row["wall_s"]) == pytest.approx(m["wall_s"]) and int(row["epochs"]) == m["epoch"]
        assert int(row["params"]) > 0
