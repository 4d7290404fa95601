"""Log-mel featurisation throughput: batched (one frontend call per batch, as training does it on the
device) versus per clip (one call per file, as a CPU loader transform would), side by side in one run.

    python benchmarks/bench_audio_features.py [--batch-size 64] [--sample-rate-hz 16000] [--device cpu]

Prints clips/s for both and their ratio; ``run()`` returns the same figures for ``make bench``.
"""

from __future__ import annotations

import argparse
import time

import torch

from bigmodel.nets.audio_frontend import LogMelFrontend


def _clips_per_s(fn, n_clips: int, repeats: int, device: torch.device) -> float:
    fn()  # warm-up: allocations, kernel selection
    best = float("inf")
    for _ in range(repeats):  # best of N: the least disturbed by other load on the machine
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return n_clips / best


@torch.no_grad()
def run(
    batch_size: int = 64,
    sample_rate_hz: int = 16000,
    clip_s: float = 1.0,
    n_mels: int = 40,
    train: bool = False,
    repeats: int = 5,
    device: str = "cpu",
) -> dict[str, float]:
    """Featurise ``batch_size`` random clips of ``clip_s`` seconds both ways.

    Args:
        train: include the training-only augmentation (gain, noise at SNR, SpecAugment).

    Returns:
        ``batched_clips_per_s``, ``per_clip_clips_per_s`` and ``speedup`` (batched / per clip).
    """
    dev = torch.device(device)
    fe = LogMelFrontend(
        sample_rate_hz, n_mels=n_mels, gain_db=6, snr_db=[10, 40], freq_mask_bins=8, time_mask_frames=20
    ).to(dev)
    fe.train(train)
    x = torch.randn(batch_size, round(clip_s * sample_rate_hz), device=dev)
    batched = _clips_per_s(lambda: fe(x), batch_size, repeats, dev)
    per_clip = _clips_per_s(lambda: [fe(x[i : i + 1]) for i in range(batch_size)], batch_size, repeats, dev)
    return {"batched_clips_per_s": batched, "per_clip_clips_per_s": per_clip, "speedup": batched / per_clip}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sample-rate-hz", type=int, default=16000)
    p.add_argument("--clip-s", type=float, default=1.0)
    p.add_argument("--n-mels", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    print(
        f"log-mel featurisation, {a.device}, batch {a.batch_size} x {a.clip_s:g} s at {a.sample_rate_hz} Hz, "
        f"{a.n_mels} mels, torch threads {torch.get_num_threads()}"
    )
    for train in (False, True):
        r = run(a.batch_size, a.sample_rate_hz, a.clip_s, a.n_mels, train, a.repeats, a.device)
        mode = "train (with augmentation)" if train else "eval (features only)"
        print(
            f"  {mode:27s} batched {r['batched_clips_per_s']:9.0f} clips/s | per clip "
            f"{r['per_clip_clips_per_s']:9.0f} clips/s | batched/per-clip {r['speedup']:.2f}x"
        )


if __name__ == "__main__":
    main()
