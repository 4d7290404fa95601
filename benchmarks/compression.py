"""(m) Compression trade-off (issue 14), measured in one run: a teacher trained here, then fp32, int8
dynamic, 50% / 80% global magnitude pruning (each fine-tuned 1 epoch with its mask), and a distilled
student against the same student trained from the labels alone. Per row: parameters (non-zero for pruned
models), state-dict bytes (what the weights cost on disk), CPU latency at batch 1 and 64, test accuracy.

Default: ``digits_cnn`` (sklearn digits, seconds per model). ``--compress-experiment mnist_cnn`` with
``--compress-train-batches N`` runs the issue's MNIST setting on ``N`` batches per epoch;
``--compress-minilm-ckpt FILE`` (a fine-tuned ``sst2_minilm``) adds int8 dynamic's SST-2 dev-accuracy drop;
``--compress-work-dir DIR`` keeps the trained models there and reuses them on the next run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hydra.core.global_hydra import GlobalHydra

from bigmodel.compress import compress
from bigmodel.compression.measure import model_batches, speed, state_dict_bytes, test_metrics
from bigmodel.compression.pruning import count_parameters
from bigmodel.inference.loader import load_model
from bigmodel.train import train
from bigmodel.utils.config import compose_run_config

QUIET = [
    "extras.print_config=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.rich_model_summary=null",
    "callbacks.early_stopping=null",
    "logger=csv",
]
# the student: ~10x fewer parameters than the teacher's SmallCNN
STUDENT = {"digits_cnn": "[8,16]", "mnist_cnn": "[10,20]"}


def _cfg(tmp: Path, name: str, overrides: list[str], config_name: str = "train"):
    return compose_run_config(config_name, overrides, tmp / name, tmp)


def _rows(ckpts: dict[str, str], dm, batches, threads: int, rounds: int = 3) -> list[dict]:
    """One row per checkpoint. Latency: the rows are timed in turn, ``rounds`` times, and each keeps its
    fastest median, so a burst of load on the shared machine does not land on one row only."""
    torch.set_num_threads(threads)
    modules = {name: load_model(path).module for name, path in ckpts.items()}
    rows = {
        name: {
            "method": name,
            "params": count_parameters(m),
            "nonzero_params": count_parameters(m, nonzero=True),
            "state_dict_bytes": state_dict_bytes(m),
            "test_acc": test_metrics(m, dm)["test/acc"],
            "ckpt_path": ckpts[name],
        }
        for name, m in modules.items()
    }
    for _ in range(rounds):
        for name, m in modules.items():
            for k, v in speed(m, batches, (1, 64), min_s=0.5).items():
                best = min if k.startswith("latency") else max
                rows[name][k] = best(rows[name].get(k, v), v)
    return list(rows.values())


def tradeoff(
    data_dir: str,
    threads: int,
    experiment: str = "digits_cnn",
    train_batches: int | None = None,
    epochs: int = 3,
    student_epochs: int = 10,
    work_dir: str | None = None,
    minilm_ckpt: str | None = None,
) -> dict:
    """The rows above; ``work_dir`` (default: a new temporary folder) keeps the runs, and the models already
    trained there (``<work_dir>/<row>/checkpoints/last.ckpt``) are reused, so an interrupted run resumes."""
    tmp = Path(work_dir or tempfile.mkdtemp(prefix="bench_compress_"))

    def train_or_reuse(name: str, overrides: list[str]) -> str:
        done = tmp / name / "checkpoints" / "last.ckpt"
        return str(done) if done.is_file() else train(_cfg(tmp, name, overrides))["last_ckpt_path"]

    common = [
        f"paths.data_dir={data_dir}",
        *QUIET,
        f"experiment={experiment}",
        f"trainer.max_epochs={epochs}",
    ]
    if train_batches:
        common.append(f"+trainer.limit_train_batches={train_batches}")
    teacher = train_or_reuse("teacher", common)
    student = [
        *common,
        f"model.net.channels={STUDENT.get(experiment, '[8,16]')}",
        "model=distillation",
        f"trainer.max_epochs={student_epochs}",
    ]
    distilled = train_or_reuse("distilled", [*student, f"model.teacher_ckpt={teacher}"])
    plain = train_or_reuse("plain", [*student, "model.alpha=0", "model.teacher_ckpt=null"])

    ckpts = {"fp32 (teacher)": teacher}
    base = [f"paths.data_dir={data_dir}", f"ckpt_path={teacher}", "evaluate=false", "batch_sizes=[]"]
    ckpts["int8 dynamic"] = compress(_cfg(tmp, "int8", [*base, "method=int8_dynamic"], "compress"))[
        "compressed_ckpt_path"
    ]
    ft = ["finetune.epochs=1", "finetune.lr=0.001"] + (
        [f"finetune.limit_train_batches={train_batches}"] if train_batches else []
    )
    for amount in (0.5, 0.8):
        ckpts[f"pruned {round(100 * amount)}% (+1 epoch)"] = compress(
            _cfg(tmp, f"prune{amount}", [*base, "method=prune", f"amount={amount}", *ft], "compress")
        )["compressed_ckpt_path"]
    ckpts["distilled student"] = distilled
    ckpts["student, labels only"] = plain

    cfg = _cfg(tmp, "data", [f"paths.data_dir={data_dir}", f"experiment={experiment}"])
    import hydra

    dm = hydra.utils.instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("test")
    batches = model_batches(dm, 64)
    rows = _rows(ckpts, dm, batches, threads)
    GlobalHydra.instance().clear()
    return {
        "experiment": experiment,
        "epochs": epochs,
        "student_epochs": student_epochs,
        "train_batches": train_batches,
        "threads": threads,
        "rows": rows,
        "minilm_int8": minilm_int8(threads, minilm_ckpt, data_dir, tmp),
    }


def minilm_int8(
    threads: int,
    ckpt: str | None = None,
    data_dir: str | None = None,
    work: Path | None = None,
    seq_len: int = 48,
) -> dict:
    """int8 dynamic vs fp32 on ``sst2_minilm``. With ``ckpt`` (a fine-tuned ``sst2_minilm`` checkpoint):
    ``bigmodel.compress method=int8_dynamic`` on it, i.e. the dev accuracy before and after on the real 872
    SST-2 dev sentences, and the two checkpoints' models timed. Without: the architecture only (the bundled
    pretrained all-MiniLM-L6-v2 and a fresh 2-class head; speed and size do not depend on the weights'
    values, accuracy does and is not measured). Timing inputs: ``(64, seq_len)`` token ids drawn from the
    vocabulary (no padding: every sentence at the full 48 tokens, the slowest case)."""
    import copy

    import hydra

    from bigmodel.compression.quantize import apply_method

    out: dict = {"seq_len": seq_len, "threads": threads, "ckpt": ckpt}
    if ckpt:
        work = Path(work or tempfile.mkdtemp(prefix="bench_minilm_"))
        overrides = [f"ckpt_path={ckpt}", "method=int8_dynamic", "batch_sizes=[]", f"threads={threads}",
                     f"output_path={work}/minilm.int8_dynamic.ckpt"]  # fmt: skip
        if data_dir:
            overrides.append(f"paths.data_dir={data_dir}")
        report = compress(_cfg(work, "minilm_int8", overrides, "compress"))
        GlobalHydra.instance().clear()
        out.update(
            fp32_dev_acc=report["before"]["test/acc"],
            int8_dev_acc=report["after"]["test/acc"],
            acc_drop_points=round(100 * (report["before"]["test/acc"] - report["after"]["test/acc"]), 3),
            compressed_ckpt=report["compressed_ckpt_path"],
        )
        module = load_model(ckpt).module
        q = load_model(report["compressed_ckpt_path"]).module
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = _cfg(Path(tmp), "minilm", ["experiment=sst2_minilm", "data.vocab_size=30522"])
            module = hydra.utils.instantiate(cfg.model, _recursive_=False).eval()
        GlobalHydra.instance().clear()
        q = copy.deepcopy(module)
        apply_method(q, "int8_dynamic")
    torch.set_num_threads(threads)
    out.update(_time_pair(module, q, seq_len))
    return out


@torch.inference_mode()
def _time_pair(module, q, seq_len: int) -> dict:
    from bigmodel.compression.measure import latency_ms, linear_weight_bytes

    x = torch.randint(1000, 30000, (64, seq_len), generator=torch.Generator().manual_seed(0))
    out: dict = {}
    for _ in range(3):  # alternate the two, keep each one's fastest median (shared-machine load bursts)
        for name, m in (("fp32", module), ("int8", q)):
            out[f"{name}_linear_weight_bytes"] = linear_weight_bytes(m.net)
            for key, xb, secs in ((f"{name}_b64_ms", x, 1.5), (f"{name}_b1_ms", x[:1], 0.5)):
                out[key] = min(out.get(key, float("inf")), latency_ms(m, xb, min_s=secs))
    out["throughput_ratio_b64"] = out["fp32_b64_ms"] / out["int8_b64_ms"]
    out["linear_bytes_ratio"] = out["fp32_linear_weight_bytes"] / out["int8_linear_weight_bytes"]
    return out


def table_rows(res: dict) -> list[tuple[str, str, str, str]]:
    """``(benchmark, measured, ratio, target)`` rows for ``make bench``'s table."""
    t = res["rows"][0]
    out = []
    for r in res["rows"]:
        out.append(
            (
                f"(m) {res['experiment']}: {r['method']}",
                f"{r['params']:,} params ({r['nonzero_params']:,} non-zero), {r['state_dict_bytes']:,} B; "
                f"{r['latency_ms_b1']:.3f} ms @1, {r['latency_ms_b64']:.2f} ms @64; test acc {r['test_acc']:.4f}",
                f"{t['latency_ms_b64'] / r['latency_ms_b64']:.2f}x speed @64, "
                f"{t['state_dict_bytes'] / r['state_dict_bytes']:.1f}x smaller, {100 * (r['test_acc'] - t['test_acc']):+.2f} pt",
                "",
            )
        )
    m = res.get("minilm_int8")
    if m:
        out.append(
            (
                "(m) sst2_minilm int8 dynamic vs fp32" + ("" if m.get("ckpt") else " (architecture)"),
                f"batch 64 x {m['seq_len']} tokens: {m['fp32_b64_ms']:.0f} vs {m['int8_b64_ms']:.0f} ms; batch 1: "
                f"{m['fp32_b1_ms']:.1f} vs {m['int8_b1_ms']:.1f} ms; Linear weights {m['fp32_linear_weight_bytes']:,} vs "
                f"{m['int8_linear_weight_bytes']:,} B; "
                + (
                    f"dev acc {m['fp32_dev_acc']:.4f} -> {m['int8_dev_acc']:.4f}"
                    if m.get("ckpt")
                    else "accuracy: not measured (pass --compress-minilm-ckpt)"
                ),
                f"{m['throughput_ratio_b64']:.2f}x throughput, {m['linear_bytes_ratio']:.1f}x smaller"
                + (f", {-m['acc_drop_points']:+.2f} pt" if m.get("ckpt") else ""),
                ">= 1.5x, >= 3x, >= -1.0 pt",
            )
        )
    return out
