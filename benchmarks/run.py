"""``make bench`` / ``python -m benchmarks.run``: all benchmarks of issue 7, a rich table, and
``logs/bench/bench_<timestamp>.json``. Sizes are chosen to finish in under 10 minutes on 2 shared CPU cores.

Options: ``--quick`` (fewer rounds, for a smoke run), ``--only a,b,c,d,e,h,i,j,k,l`` (plus ``f``: inference
latency / throughput eager vs torch.compile vs ONNX Runtime, ``g``: serving load test; both read trained
checkpoints, ``--inference-ckpts name=path,...``, default the newest ``last.ckpt`` of each of
``--inference-experiments``), ``--data-experiments digits_cnn,...``. Rows h-l (issue 17) are in overhead.py,
seed_model.py, compile_mfu.py; ``m``: compression trade-off table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time

import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from benchmarks import compile_mfu as cm
from benchmarks import overhead as ovh
from benchmarks import parity as par
from benchmarks import seed_model as seed
from benchmarks import system
from bigmodel.utils.resolvers import CONFIG_DIR, PROJECT_ROOT


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def _net_cfg(net: str) -> dict:
    cfg = _compose([f"net={net}", "experiment=digits_mlp"] if net == "big_mlp" else [f"net={net}"])
    return OmegaConf.to_container(cfg.model.net, resolve=True)


def _lm_cfg(net: str, block_size: int, vocab_size: int = 65) -> dict:
    """The real LanguageModelModule config of ``model=language_model net=<net>`` with a fixed vocabulary and
    context (no data). The LR schedule is dropped so that both loops run the same plain AdamW step."""
    cfg = _compose(
        [
            "~experiment",  # no experiment: its data/trainer settings are not needed here
            "model=language_model",
            f"net={net}",
            f"model.net.vocab_size={vocab_size}",
            f"model.net.block_size={block_size}",
            "model.scheduler=null",
        ]
    )
    return OmegaConf.to_container(cfg.model, resolve=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="a,b,c,d,e,h,i,j,k,l")
    ap.add_argument("--data-experiments", default="digits_cnn")
    # 1 thread by default: on a shared 2-core machine, 2 OpenMP threads per op stall on each other
    ap.add_argument("--threads", type=int, default=1, help="torch threads for (a), (c), (e)")
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("BIGMODEL_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data")),
    )
    ap.add_argument("--inference-experiments", default="mnist_cnn,spoken_digits_cnn,sst2_transformer")
    ap.add_argument("--inference-ckpts", default="", help="name=path,... (overrides --inference-experiments)")
    ap.add_argument("--serve-requests", type=int, default=2000)
    ap.add_argument("--compress-experiment", default="digits_cnn")
    ap.add_argument("--compress-train-batches", type=int, default=None)
    # a fine-tuned sst2_minilm checkpoint: int8 dynamic's dev-accuracy drop (else the architecture only)
    ap.add_argument("--compress-minilm-ckpt", default=None)
    ap.add_argument("--compress-work-dir", default=None)  # keep (and reuse) the trained models there
    args = ap.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    torch.set_num_threads(args.threads)
    log_dir = PROJECT_ROOT / "logs" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    res: dict = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads",
        "load_avg_start": os.getloadavg(),
    }
    if "a" in only or "e" in only:
        res["parity"] = [
            par.parity(
                "big_mlp",
                _net_cfg("big_mlp"),
                batch=64,
                rounds=3 if q else 5,
                warmup=5,
                steps=50 if q else 200,
            ),
            par.parity(
                "big_mlp",
                _net_cfg("big_mlp"),
                batch=1024,
                rounds=3 if q else 5,
                warmup=3,
                steps=10 if q else 30,
            ),
            par.parity(
                "gpt_nano",
                _lm_cfg("gpt_nano", 256),
                batch=4,
                rounds=2 if q else 3,
                warmup=2,
                steps=2 if q else 3,
            ),
        ]
    if "b" in only:
        res["startup"] = system.startup(repeats=1 if q else 3, log_dir=log_dir)
    if "c" in only:
        res["dataloading"] = [system.dataloading(e, args.data_dir) for e in args.data_experiments.split(",")]
    if "d" in only:
        res["ddp_cpu"] = system.ddp(log_dir, epochs=2 if q else 3, threads=args.threads)
    if "f" in only or "g" in only:
        _inference_rows(res, args, only, log_dir)
    # issue 17: default callbacks + CSV logger (h), the seed's big model (i), fixed overhead and Lightning's
    # floor (j, from the same rounds as h at batch 64), compile vs eager MFU (k), per-hook profile (l)
    if "h" in only or "j" in only:
        res["default_callbacks"] = [
            {
                **ovh.overhead(batch=64, rounds=3 if q else 5, steps=100 if q else 200),
                "load_avg": os.getloadavg(),
            },
            {
                **ovh.overhead(batch=1024, rounds=3, warmup=3, steps=10 if q else 30),
                "load_avg": os.getloadavg(),
            },
        ]
    if "i" in only:
        res["seed_model"] = {
            **seed.seed_model(rounds=1 if q else 3, warmup=1, steps=2),
            "load_avg": os.getloadavg(),
        }
    if "k" in only:
        res["compile_mfu"] = {
            **cm.compile_mfu(_lm_cfg("gpt_nano", 256), rounds=1 if q else 2),
            "load_avg": os.getloadavg(),
        }
    if "l" in only:
        res["profile"] = {**ovh.profile(batch=64, steps=100 if q else 200), "load_avg": os.getloadavg()}
    if "m" in only:
        from benchmarks import compression

        res["compression"] = compression.tradeoff(
            args.data_dir,
            args.threads,
            args.compress_experiment,
            args.compress_train_batches,
            work_dir=args.compress_work_dir,
            minilm_ckpt=args.compress_minilm_ckpt,
        )
    res["load_avg_end"] = os.getloadavg()
    res["wall_s"] = time.time() - started
    out = log_dir / f"bench_{dt.datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    Console(width=150).print(table(res))
    print(f"wrote {out} ({res['wall_s']:.0f} s)")


def _inference_ckpts(args) -> dict[str, str]:
    if args.inference_ckpts:
        return dict(kv.split("=", 1) for kv in args.inference_ckpts.split(","))
    from bigmodel.utils.run import resolve_ckpt_path

    found = {}
    for name in args.inference_experiments.split(","):
        try:
            found[name] = resolve_ckpt_path("last", PROJECT_ROOT / "logs", name)
        except Exception as e:  # not trained on this machine: say so in the results
            print(f"(f)/(g): skipping {name}: {e}")
    return found


def _inference_rows(res: dict, args, only: set[str], log_dir) -> None:
    from benchmarks import inference as inf

    ckpts = _inference_ckpts(args)
    if "f" in only:
        from benchmarks.generation import generation

        res["inference"] = [inf.speed(n, p, args.threads, args.quick) for n, p in ckpts.items()]
        # a language model needs no checkpoint here: tokens/s do not depend on the weights
        res["generation"] = generation(_lm_cfg("gpt_nano", 256)["net"], args.threads, args.quick)
    image_ckpt = next((p for n, p in ckpts.items() if "mnist" in n or "digits" in n), None)
    if "g" in only and image_ckpt:
        import gzip

        import numpy as np
        from PIL import Image

        raw = gzip.open(f"{args.data_dir}/mnist/t10k-images-idx3-ubyte.gz").read()
        png = log_dir / "mnist_test_0.png"
        Image.fromarray(np.frombuffer(raw, np.uint8, offset=16)[:784].reshape(28, 28).copy(), "L").save(png)
        res["serving"] = inf.serving(
            image_ckpt, png, 200 if args.quick else args.serve_requests, 16, args.threads
        )


def table(res: dict) -> Table:
    t = Table(title=f"make bench - {res['date']} - {res['machine']} - load {res['load_avg_start'][0]:.1f}")
    for c in ("benchmark", "measured", "ratio", "target"):
        t.add_column(c)
    for p in res.get("parity", []):
        t.add_row(
            f"(a) parity {p['net']} batch {p['batch_size']}",
            f"template {p['template_step_ms']:.1f} ms/step, plain loop {p['plain_step_ms']:.1f} ms/step",
            f"{p['parity_ratio']:.3f}",
            ">= 0.97",
        )
    if "startup" in res:
        s = res["startup"]
        t.add_row(
            "(b) start-up",
            f"make train -> 1st step {s['make_train_to_first_step_s']:.1f} s; "
            f"import floor {s['import_floor_s']:.1f} s",
            f"{s['make_train_to_first_step_s'] / s['import_floor_s']:.1f}x",
            "",
        )
    for d in res.get("dataloading", []):
        t.add_row(
            f"(c) data {d['experiment']}",
            f"loader {d['loader_samples_per_sec']:,.0f} samples/s, model "
            f"{d['model_samples_per_sec']:,.0f} samples/s",
            f"{d['ratio']:.1f}x",
            ">= 3x",
        )
    if "ddp_cpu" in res:
        d = res["ddp_cpu"]
        t.add_row(
            "(d) DDP CPU 2 vs 1 process",
            f"{d['ddp_2_processes_samples_per_sec']:,.0f} vs "
            f"{d['one_process_samples_per_sec']:,.0f} samples/s ({d['one_process_threads']} thread)",
            f"{d['ratio']:.2f}",
            "",
        )
    for p in res.get("parity", []):
        if p["net"] == "gpt_nano":
            t.add_row(
                "(e) CPU MFU gpt_nano",
                f"{p['train_flops_per_step'] / 1e9:.1f} GFLOP/step; peak "
                f"{p['cpu_matmul_peak_flops'] / 1e9:.0f} GFLOP/s (1024² fp32 matmul)",
                f"{p['mfu_template']:.2f} (plain {p['mfu_plain']:.2f})",
                ">= 0.40",
            )
    for r in res.get("inference", []):
        t.add_row(
            f"(f) CPU inference {r['model']}",
            f"batch 1: eager {r['eager_b1_ms']:.2f} / compile {r['compile_b1_ms']:.2f} / ORT "
            f"{r['onnxruntime_b1_ms']:.2f} ms; batch 64: {r['eager_b64_samples_per_s']:,.0f} / "
            f"{r['compile_b64_samples_per_s']:,.0f} / {r['onnxruntime_b64_samples_per_s']:,.0f} samples/s",
            f"ORT {r['ort_vs_eager_b1']:.2f}x eager at batch 1",
            ">= 1.5x",
        )
    if "generation" in res:
        g = res["generation"]
        t.add_row(
            f"(f) CPU generation gpt_nano, {g['block_size']}-token window",
            f"eager {g['eager_tokens_per_s']:,.0f} / compile {g['compile_tokens_per_s']:,.0f} / ORT "
            f"{g['onnxruntime_tokens_per_s']:,.0f} tokens/s (same tokens: {g['same_tokens']})",
            f"ORT {g['ort_vs_eager']:.2f}x, compile {g['compile_vs_eager']:.2f}x eager",
            "",
        )
    if "serving" in res:
        s = res["serving"]
        for name, v in s["variants"].items():
            t.add_row(
                f"(g) serve mnist_cnn {name}, {s['requests']} req / {s['clients']} clients",
                f"{v['served_req_per_s']:,.0f} req/s, p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms; in-process "
                f"{s['in_process_samples_per_s']:,.0f} samples/s; CPU/req: server {v['server_cpu_ms_per_req']:.2f} "
                f"+ client {v['client_cpu_ms_per_req']:.2f} ms vs {s['in_process_cpu_ms_per_sample']:.2f} in-process",
                f"{v['ratio']:.2f} of in-process (CPU-cost ratio {v['cpu_ratio']:.2f})",
                ">= 0.5, p99 <= 100 ms",
            )
    _issue17_rows(t, res)
    if "compression" in res:
        from benchmarks import compression

        for row in compression.table_rows(res["compression"]):
            t.add_row(*row)
    return t


def _issue17_rows(t: Table, res: dict) -> None:
    for p in res.get("default_callbacks", []):
        la = f"load {p['load_avg'][0]:.1f}"
        t.add_row(
            f"(h) parity, default callbacks + CSV, big_mlp batch {p['batch_size']}",
            f"template {p['template_step_ms']:.2f} ms/step, plain {p['plain_step_ms']:.2f} ms/step ({la})",
            f"{p['parity_ratio']:.3f}",
            ">= 0.85" if p["batch_size"] == 64 else ">= 0.97",
        )
    for p in res.get("default_callbacks", [])[:1]:
        t.add_row(
            "(j) fixed overhead, big_mlp batch 64",
            f"template - plain {p['overhead_ms']:.2f} ms/step; Lightning floor - plain "
            f"{p['floor_overhead_ms']:.2f} ms/step (floor {p['floor_step_ms']:.2f} ms/step)",
            f"{p['above_floor_ms']:+.2f} ms above floor",
            "<= 0.3 ms, or <= floor + 0.1 ms",
        )
    if "seed_model" in res:
        s = res["seed_model"]
        t.add_row(
            f"(i) seed big model 1000-10000-10000-10, SGD, batch {s['batch_size']}",
            f"template {s['template_step_ms']:.0f} ms/step, plain {s['plain_step_ms']:.0f} ms/step "
            f"(load {s['load_avg'][0]:.1f})",
            f"{s['parity_ratio']:.3f}",
            ">= 0.99",
        )
    if "compile_mfu" in res:
        c = res["compile_mfu"]
        t.add_row(
            "(k) CPU MFU gpt_nano, compile vs eager",
            f"eager {c['eager_step_ms']:.0f} ms/step, compiled {c['compiled_step_ms']:.0f} ms/step; peak "
            f"{c['cpu_matmul_peak_flops'] / 1e9:.0f} GFLOP/s (load {c['load_avg'][0]:.1f})",
            f"{c['mfu_eager']:.2f} eager, {c['mfu_compiled']:.2f} compiled",
            ">= 0.60",
        )
    if "profile" in res:
        p = res["profile"]
        top = ", ".join(
            f"{k.split(']')[-1][:40]} {v:.2f}" for k, v in list(p["hooks_ms_per_step"].items())[:6]
        )
        t.add_row("(l) per-hook profile, ms/step", top, f"step {p['step_ms_profiled']:.2f} ms", "")


if __name__ == "__main__":
    main()
