"""Inference benchmarks (issue 12): (f) CPU latency at batch 1 and throughput at batch 64 of eager PyTorch,
``torch.compile`` and ONNX Runtime on the same raw-batch -> logits graph; (g) a bounded loopback load test
of ``bigmodel.serve`` (LitServe, dynamic batching) against in-process prediction of the same inputs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def _tree_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and every process below it, from ``/proc`` (Linux)."""
    tick, info = os.sysconf("SC_CLK_TCK"), {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        info[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
    out = {}
    for pid, (_, cpu) in info.items():
        q = pid
        while q in info and q != root:
            q = info[q][0]
        if q == root:
            out[pid] = cpu
    return out


async def _load(url: str, body: bytes, requests: int, clients: int) -> tuple[list[float], float]:
    """``requests`` POSTs from ``clients`` concurrent keep-alive connections (aiohttp: one event loop, so
    the load generator costs ~0.2 ms CPU per request; a thread pool of httpx clients cost ~1.5 ms, a
    third of a core at 300 req/s taken from the server it measures)."""
    import aiohttp

    left, lat = [requests], []
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def client() -> None:
            while left[0] > 0:
                left[0] -= 1
                t = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as r:
                    text = await r.read()
                    assert r.status == 200, text
                lat.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return lat, time.perf_counter() - t0


def _serve_once(ckpt: str, body: bytes, requests: int, clients: int, overrides: list[str]) -> dict:
    """One server process with ``overrides``: req/s, p50/p99 and its CPU milliseconds per request."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "bigmodel.serve", f"ckpt_path={ckpt}", f"port={port}",
           f"paths.log_dir={tempfile.mkdtemp()}", *overrides]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        asyncio.run(_load(f"{url}/predict", body, 100, clients))  # warm-up
        cpu0, client0 = _tree_cpu_s(proc.pid), time.process_time()
        lat, wall = asyncio.run(_load(f"{url}/predict", body, requests, clients))
        cpu1, client1 = _tree_cpu_s(proc.pid), time.process_time()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lat.sort()
    return {
        "overrides": overrides, "served_req_per_s": requests / wall, "p50_ms": lat[len(lat) // 2],
        "p99_ms": lat[int(len(lat) * 0.99) - 1], "exit_code": proc.returncode,
        "server_cpu_ms_per_req": sum(cpu1[k] - cpu0.get(k, 0.0) for k in cpu1) * 1000 / requests,
        "client_cpu_ms_per_req": (client1 - client0) * 1000 / requests,
    }  # fmt: skip


def _in_process(ckpt: str, data: bytes, requests: int, threads: int) -> tuple[float, float]:
    """(samples/s, CPU ms per sample) of in-process prediction: decode + collate + ``predict_step`` in
    batches of 64, with ``threads`` intra-op threads (as the server's worker)."""
    torch.set_num_threads(threads)
    loaded = load_model(ckpt)
    n = (requests // 64 + (requests % 64 > 0)) * 64
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for _ in range(n // 64):
            x = loaded.pre.collate([loaded.pre.load_bytes(data) for _ in range(64)])
            loaded.module.predict_step(loaded.pre.adapter(x))
    return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / n


# side by side in one run: the shipped defaults (configs/serve.yaml), and ZeroMQ responses
SERVE_VARIANTS = {"defaults": [], "fast_queue=true": ["fast_queue=true"]}


def serving(ckpt: str, image: Path, requests: int = 2000, clients: int = 16, threads: int = 1,
            rounds: int = 2) -> dict:  # fmt: skip
    """req/s and p50/p99 latency of ``requests`` POSTs from ``clients`` concurrent clients on loopback,
    per :data:`SERVE_VARIANTS` (interleaved over ``rounds``, the best round kept), against in-process
    prediction of the same image measured between them. Also CPU milliseconds per request (server
    processes, client) and per in-process sample: unlike wall-clock ratios on a shared machine, these do
    not move with the other jobs' load."""
    data = image.read_bytes()
    body = json.dumps({"image": base64.b64encode(data).decode()}).encode()
    variants: dict[str, dict] = {}
    in_proc: list[tuple[float, float]] = []
    load_start = os.getloadavg()
    for _ in range(rounds):
        in_proc.append(_in_process(ckpt, data, requests, threads))
        for name, overrides in SERVE_VARIANTS.items():
            r = _serve_once(ckpt, body, requests, clients, overrides)
            if name not in variants or r["served_req_per_s"] > variants[name]["served_req_per_s"]:
                variants[name] = r
    in_proc.append(_in_process(ckpt, data, requests, threads))
    in_process = max(s for s, _ in in_proc)
    in_cpu = min(c for _, c in in_proc)
    for r in variants.values():
        r["ratio"] = r["served_req_per_s"] / in_process
        r["cpu_ratio"] = in_cpu / (r["server_cpu_ms_per_req"] + r["client_cpu_ms_per_req"])
    best = variants["defaults"]
    return {
        "requests": requests, "clients": clients, **best, "in_process_samples_per_s": in_process,
        "in_process_cpu_ms_per_sample": in_cpu, "variants": variants,
        "load_avg": [load_start, os.getloadavg()],
    }  # fmt: skip
