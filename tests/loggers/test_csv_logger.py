"""bigmodel.loggers.csv_logger: another process (ddp_spawn's test stage) adding columns to metrics.csv."""

import csv
import pickle

from bigmodel.loggers.csv_logger import CSVLogger


def test_other_process_keeps_earlier_columns(tmp_path):
    main = CSVLogger(tmp_path, name="csv", version="")
    # the writer exists in the launching process (hyper-parameters are logged there)
    assert main.experiment is not None
    fit, test = pickle.loads(pickle.dumps(main)), pickle.loads(pickle.dumps(main))  # two spawned stages
    fit.log_metrics({"val/acc": 0.5, "train/loss": 1.0}, step=0)
    fit.save()
    test.log_metrics({"test/acc": 0.9}, step=1)
    test.save()  # Lightning's own raised "dict contains fields not in fieldnames: 'train/loss', 'val/acc'"
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["val/acc"] == "0.5" and rows[1]["test/acc"] == "0.9"
