"""LogMelFrontend: feature shapes against window/hop, batching, train-only augmentation, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigmodel.nets.audio_frontend import LogMelFrontend


@pytest.mark.parametrize(
    ("sr", "kw", "t", "win", "hop"),
    [
        (8000, {"win_ms": 25, "hop_ms": 10}, 8000, 200, 80),
        (16000, {"win_ms": 25, "hop_ms": 10, "n_mels": 64}, 16000, 400, 160),
        (16000, {"win_samples": 512, "hop_samples": 256, "n_mels": 80}, 12345, 512, 256),
        (8000, {"win_ms": 32, "hop_ms": 16, "n_mels": 32}, 4000, 256, 128),
    ],
)
def test_feature_shape_follows_window_and_hop(sr, kw, t, win, hop):
    fe = LogMelFrontend(sr, **kw).eval()
    assert (fe.win_length, fe.hop_length) == (win, hop)
    assert fe.n_fft >= win and fe.n_fft & (fe.n_fft - 1) == 0
    out = fe(torch.randn(3, t))
    n_mels = kw.get("n_mels", 40)
    assert out.shape == (3, n_mels, 1 + t // hop) == (3, n_mels, fe.num_frames(t))


def test_batched_equals_per_clip_in_eval():
    fe = LogMelFrontend(8000, freq_mask_bins=8, time_mask_frames=10, snr_db=10, gain_db=6).eval()
    x = torch.randn(5, 8000) * torch.linspace(0.01, 1, 5)[:, None]  # different loudness per clip
    batched = fe(x)
    single = torch.cat([fe(x[i : i + 1]) for i in range(5)])
    assert torch.allclose(batched, single, atol=1e-4)  # top_db and normalisation are per clip


def test_augmentation_only_in_training():
    fe = LogMelFrontend(8000, freq_mask_bins=10, time_mask_frames=20, snr_db=[5, 5], noise_p=1.0, gain_db=6)
    x = torch.randn(4, 8000)
    fe.eval()
    assert torch.equal(fe(x), fe(x))
    fe.train()
    a, b = fe(x), fe(x)
    assert not torch.equal(a, b)
    assert (a == 0).any()  # masked bins are set to 0, the per-clip mean


def test_noise_at_requested_snr_and_gain_range():
    fe = LogMelFrontend(8000, snr_db=20.0, noise_p=1.0, gain_db=0).train()
    x = torch.sin(torch.linspace(0, 2000, 8000)).repeat(8, 1)
    noise = fe.augment_waveform(x) - x
    snr = 10 * torch.log10(x.pow(2).sum(-1) / noise.pow(2).sum(-1))
    assert torch.allclose(snr, torch.full_like(snr, 20.0), atol=0.01)
    fe = LogMelFrontend(8000, gain_db=6.0).train()
    ratio = fe.augment_waveform(torch.ones(256, 10))[:, 0]
    db = 20 * torch.log10(ratio)
    assert db.min() >= -6.0001 and db.max() <= 6.0001 and db.std() > 1


def test_n_mels_too_large_is_a_value_error():
    with pytest.raises(ValueError, match=r"n_mels=128 is too large.*n_fft=256.*Use n_mels <= (\d+)") as e:
        LogMelFrontend(8000, n_mels=128, win_ms=25)
    ok = int(e.value.args[0].split("Use n_mels <= ")[1].split(",")[0])
    LogMelFrontend(8000, n_mels=ok, win_ms=25)  # the suggestion works
    with pytest.raises(ValueError):
        LogMelFrontend(8000, n_mels=ok + 1, win_ms=25)


def test_other_bad_settings():
    with pytest.raises(ValueError, match="n_fft"):
        LogMelFrontend(8000, win_samples=300, n_fft=256)
    with pytest.raises(ValueError, match="f_max_hz"):
        LogMelFrontend(8000, f_max_hz=6000)
    with pytest.raises(ValueError, match="hop"):
        LogMelFrontend(8000, hop_ms=0.01)
    with pytest.raises(ValueError, match="snr_db"):
        LogMelFrontend(8000, snr_db=[30, 10])


def test_feature_benchmark_reports_both_ways():
    from benchmarks.bench_audio_features import run

    r = run(batch_size=4, sample_rate_hz=8000, clip_s=0.25, repeats=1, train=True)
    assert set(r) == {"batched_clips_per_s", "per_clip_clips_per_s", "speedup"}
    assert r["batched_clips_per_s"] > 0 and r["per_clip_clips_per_s"] > 0
    assert r["speedup"] == r["batched_clips_per_s"] / r["per_clip_clips_per_s"]


def test_features_stay_float32_under_autocast():
    fe = LogMelFrontend(8000, snr_db=20, freq_mask_bins=4).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fe(torch.randn(2, 4000).bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_builds_on_the_meta_device_and_still_checks_n_mels():
    with torch.device("meta"):
        fe = LogMelFrontend(16000, n_mels=64)
        with pytest.raises(ValueError, match="n_mels=512"):
            LogMelFrontend(8000, n_mels=512)
    assert fe.mel.mel_scale.fb.device.type == "cpu"  # fixed filterbank buffers, built on the CPU


def test_shared_log_mel_construction_equals_the_frontends_output():
    from bigmodel.nets.audio_frontend import log_mel_transforms

    x = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0))
    fe = LogMelFrontend(8000, n_mels=40, win_ms=25, hop_ms=10, normalize=False).eval()
    mel, to_db = log_mel_transforms(8000, 40, fe.n_fft, fe.hop_length, fe.win_length, 0.0, 4000.0, 80.0)
    assert torch.allclose(fe(x), to_db(mel(x).unsqueeze(1)).squeeze(1), atol=1e-5)
    # the media callback's image is drawn from the same construction (window = n_fft, its own hop)
    from bigmodel.callbacks.media import heatmap
    from bigmodel.callbacks.media_audio import MediaAudio

    cb = MediaAudio(sample_rate_hz=8000, n_mels=32, n_fft=256, hop_ms=10)
    cb.rate = 8000
    mel, to_db = log_mel_transforms(8000, 32, 256, 80, top_db=80.0)
    expected = heatmap(to_db(mel(x[:1]))[0].flip(0).numpy())
    img = cb.log_mel_image(x[0])
    assert img.shape == (32, 1 + 8000 // 80, 3) and np.array_equal(img, expected)
