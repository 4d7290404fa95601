"""Inference benchmarks (issue 12): (f) CPU latency at batch 1 and throughput at batch 64 of eager PyTorch,
``torch.compile`` and ONNX Runtime on the same raw-batch -> logits graph; (g) a bounded loopback load test
of ``bigmodel.serve`` (LitServe, dynamic batching) against in-process prediction of the same inputs."""

from __future__ import annotations

import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bigmodel.inference.backends import InferenceGraph, OnnxRuntimeModule
from bigmodel.inference.exporting import dynamic_shapes, to_onnx, trace
from bigmodel.inference.loader import load_model
from bigmodel.utils.resolvers import PROJECT_ROOT


def _time_ms(fn, x, warmup: int, iters: int) -> float:
    """Median milliseconds per call."""
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def speed(name: str, ckpt: str, threads: int, quick: bool = False) -> dict:
    """Latency (batch 1, ms) and throughput (batch 64, samples/s) of eager / compile / ONNX Runtime."""
    loaded = load_model(ckpt)
    graph = InferenceGraph(loaded).eval()
    x1, x64 = loaded.pre.example(1), loaded.pre.example(64)
    if loaded.kind == "text":  # a realistic sentence length
        x1, x64 = (torch.randint(1, 200, (b, min(32, loaded.pre.max_length))) for b in (1, 64))
    compiled = torch.compile(graph, dynamic=False)
    with tempfile.TemporaryDirectory() as d:
        with torch.no_grad():
            ep = trace(
                graph,
                loaded.pre.example(2),
                dynamic_shapes(loaded.kind, x1, getattr(loaded.pre, "max_length", None)),
            )
        to_onnx(ep, Path(d) / "m.onnx", None)
        ort = OnnxRuntimeModule(Path(d) / "m.onnx", threads)
        it = 20 if quick else 100
        out = {"model": name, "threads": threads}
        for label, fn in (("eager", graph), ("compile", compiled), ("onnxruntime", ort.logits)):
            out[f"{label}_b1_ms"] = _time_ms(fn, x1, 5, it)
            out[f"{label}_b64_samples_per_s"] = 64 / (_time_ms(fn, x64, 2, max(5, it // 5)) / 1000)
    out["ort_vs_eager_b1"] = out["eager_b1_ms"] / out["onnxruntime_b1_ms"]
    out["compile_vs_eager_b1"] = out["eager_b1_ms"] / out["compile_b1_ms"]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(ckpt: str, image: Path, requests: int = 2000, clients: int = 16, threads: int = 1) -> dict:
    """req/s and p50/p99 latency of ``requests`` POSTs from ``clients`` concurrent clients on loopback,
    against in-process prediction (decode + collate + predict_step, batches of 64) of the same image."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "bigmodel.serve", f"ckpt_path={ckpt}", f"port={port}", f"threads={threads}",
           "max_batch_size=32", "batch_timeout=0.002", f"paths.log_dir={tempfile.mkdtemp()}"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    url, body = f"http://127.0.0.1:{port}", {"image": base64.b64encode(image.read_bytes()).decode()}
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=clients))
        for _ in range(50):
            client.post(f"{url}/predict", json=body)  # warm-up

        def one(_):
            t = time.perf_counter()
            r = client.post(f"{url}/predict", json=body)
            assert r.status_code == 200, r.text
            return (time.perf_counter() - t) * 1000

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            lat = sorted(pool.map(one, range(requests)))
        wall = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    loaded, data = load_model(ckpt), image.read_bytes()
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(0, requests, 64):
            x = loaded.pre.collate([loaded.pre.load_bytes(data) for _ in range(64)])
            loaded.module.predict_step(loaded.pre.adapter(x))
    in_process = (requests // 64 + (requests % 64 > 0)) * 64 / (time.perf_counter() - t0)
    served = requests / wall
    return {
        "requests": requests, "clients": clients, "served_req_per_s": served, "p50_ms": lat[len(lat) // 2],
        "p99_ms": lat[int(len(lat) * 0.99) - 1], "in_process_samples_per_s": in_process,
        "ratio": served / in_process, "exit_code": proc.returncode,
    }  # fmt: skip
