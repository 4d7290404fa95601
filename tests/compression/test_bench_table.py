"""`make bench ARGS='--only m'`: the trade-off table's rows from a result (no timing asserted)."""

from __future__ import annotations

from benchmarks.compression import table_rows


def _row(method: str, params: int, nonzero: int, nbytes: int, b64_ms: float, acc: float) -> dict:
    return {"method": method, "params": params, "nonzero_params": nonzero, "state_dict_bytes": nbytes,
            "latency_ms_b1": 0.5, "latency_ms_b64": b64_ms, "test_acc": acc}  # fmt: skip


def test_rows_give_ratios_to_the_fp32_row_and_the_minilm_accuracy_drop():
    minilm = {"seq_len": 48, "fp32_b64_ms": 300.0, "int8_b64_ms": 150.0, "fp32_b1_ms": 20.0, "int8_b1_ms": 10.0,
              "fp32_linear_weight_bytes": 4000, "int8_linear_weight_bytes": 1000, "throughput_ratio_b64": 2.0,
              "linear_bytes_ratio": 4.0}  # fmt: skip
    res = {
        "experiment": "digits_cnn",
        "rows": [_row("fp32 (teacher)", 100, 100, 4000, 10.0, 0.98), _row("pruned 50%", 100, 50, 4000, 5.0, 0.97)],
        "minilm_int8": {**minilm, "ckpt": "x.ckpt", "fp32_dev_acc": 0.85, "int8_dev_acc": 0.843,
                        "acc_drop_points": 0.7},
    }  # fmt: skip
    rows = table_rows(res)
    assert len(rows) == 3 and rows[1][0] == "(m) digits_cnn: pruned 50%"
    assert "2.00x speed @64" in rows[1][2] and "-1.00 pt" in rows[1][2] and "(50 non-zero)" in rows[1][1]
    assert (
        "dev acc 0.8500 -> 0.8430" in rows[2][1] and "2.00x throughput, 4.0x smaller, -0.70 pt" in rows[2][2]
    )
    res["minilm_int8"] = {**minilm, "ckpt": None}
    assert "not measured" in table_rows(res)[2][1] and "(architecture)" in table_rows(res)[2][0]
