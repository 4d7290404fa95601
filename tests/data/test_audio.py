"""Audio DataModules: FSDD splits, Speech Commands lists, audio folders, decoding and every bad input."""

from __future__ import annotations

import io
import logging
import os
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bigmodel.data import audio_download
from bigmodel.data.audio import AudioFolderDataModule, SpeechCommandsDataModule, SpokenDigitsDataModule
from bigmodel.data.audio_io import BadAudioError, decode_audio, fit_clip, pad_collate
from bigmodel.data.folders import BadFileError
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.helpers.audio_files import BAD_KINDS, fsdd_folder, tone, write_bad


@pytest.fixture(scope="module")
def fsdd_standard():
    # module scope (decode the 3,000 files once), so it cannot use the function-scoped `shared_data`
    shared = Path(os.environ.get("BIGMODEL_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not (shared / "fsdd" / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {shared} (set BIGMODEL_SHARED_DATA)")
    dm = SpokenDigitsDataModule(str(shared), split="standard", seed=3)
    dm.setup()
    return dm


def _names(ds) -> list[str]:
    return [p.name for p, _ in ds.items]


# ---------------------------------------------------------------- FSDD


def test_fsdd_standard_split(fsdd_standard):
    dm = fsdd_standard
    test, train, val = _names(dm.data_test), _names(dm.data_train), _names(dm.data_val)
    assert len(test) == 300 and all(int(n[:-4].split("_")[2]) < 5 for n in test)
    assert all(int(n[:-4].split("_")[2]) >= 5 for n in train + val)
    assert len(train) + len(val) == 2700 and not set(train) & set(val)
    # stratified by digit and speaker: every (digit, speaker) pair is in val
    assert len({tuple(n.split("_")[:2]) for n in val}) == 60
    assert dm.num_classes == 10 and dm.classes == [str(d) for d in range(10)]
    assert all(int(n[0]) == y for n, y in zip(test, dm.data_test.labels, strict=True))


def test_fsdd_batches_fixed_clip_and_centre_crop(fsdd_standard):
    dm = fsdd_standard
    waves, labels, lengths = next(iter(dm.val_dataloader()))
    assert waves.shape == (64, 8000) and waves.dtype == torch.float32
    assert labels.dtype == torch.long and (lengths == 8000).all()
    again = next(iter(dm.val_dataloader()))[0]
    assert torch.equal(waves, again)  # eval crop/pad is centred: deterministic


def test_fsdd_split_is_seeded(shared_data, fsdd_standard):
    a = SpokenDigitsDataModule(str(shared_data), seed=3, preload=False)
    b = SpokenDigitsDataModule(str(shared_data), seed=4, preload=False)
    a.setup(), b.setup()
    assert _names(a.data_val) == _names(fsdd_standard.data_val)
    assert _names(a.data_val) != _names(b.data_val)


def test_fsdd_speaker_split_holds_out_a_voice(shared_data):
    dm = SpokenDigitsDataModule(str(shared_data), split="speaker", test_speaker="lucas", preload=False)
    dm.setup()
    assert len(dm.data_test) == 500 and {n.split("_")[1] for n in _names(dm.data_test)} == {"lucas"}
    assert "lucas" not in {n.split("_")[1] for n in _names(dm.data_train) + _names(dm.data_val)}
    with pytest.raises(ConfigError, match="test_speaker='nobody'.*george"):
        SpokenDigitsDataModule(
            str(shared_data), split="speaker", test_speaker="nobody", preload=False
        ).setup()


def test_fsdd_bad_split_and_name(tmp_path, shared_data):
    with pytest.raises(ConfigError, match="data.split"):
        SpokenDigitsDataModule(str(shared_data), split="random")
    rec = tmp_path / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for n in ["3_theo_1.wav", "3_theo_7.wav", "4_theo_8.wav", "4_theo_9.wav", "3_theo_9.wav"]:
        (rec / n).write_bytes((shared_data / "fsdd" / "recordings" / n).read_bytes())
    (rec / "unlabelled.wav").write_bytes((rec / "3_theo_1.wav").read_bytes())
    dm = SpokenDigitsDataModule(str(tmp_path), batch_size=2, val_fraction=0.5)
    dm.setup()
    assert "unlabelled.wav" in str(dm.on_bad.skipped) and len(dm.data_test) == 1


def test_fsdd_offline_error_names_url_path_checksum(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        SpokenDigitsDataModule(
            str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), download=False
        ).setup()
    msg = str(e.value)
    assert audio_download.FSDD_URL in msg and audio_download.FSDD_RECORDINGS_SHA256 in msg
    assert str(tmp_path / "data" / "fsdd" / "recordings") in msg

    def no_network(url, **kw):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(ConfigError, match="download failed.*network is unreachable.*github.com"):
        SpokenDigitsDataModule(
            str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), download=True
        ).setup()


def test_fsdd_download_is_verified(tmp_path, monkeypatch, shared_data):
    def fake_download(url, **kw):  # an archive with too few recordings: the manifest hash differs
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.write(shared_data / "fsdd/recordings/0_theo_0.wav", "fsdd-x/recordings/0_theo_0.wav")
        return io.BytesIO(buf.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", fake_download)
    with pytest.raises(ConfigError, match="manifest sha256"):
        SpokenDigitsDataModule(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")).setup()
    assert not (tmp_path / "data").exists()  # nothing written into data_dir
    # the real recordings give the documented manifest hash
    rec = shared_data / "fsdd" / "recordings"
    assert audio_download.recordings_manifest_sha256(rec) == audio_download.FSDD_RECORDINGS_SHA256


# ---------------------------------------------------------------- Speech Commands


def _fake_speech_commands(root: Path, shared_data: Path) -> Path:
    src = sorted((shared_data / "fsdd" / "recordings").glob("*_jackson_1*.wav"))
    words = {"yes": src[:6], "no": src[6:12], "_background_noise_": src[12:13]}
    for word, files in words.items():
        (root / word).mkdir(parents=True)
        for i, f in enumerate(files):
            (root / word / f"abc{i}_nohash_0.wav").write_bytes(f.read_bytes())
    (root / "validation_list.txt").write_text("yes/abc0_nohash_0.wav\nno/abc0_nohash_0.wav\n")
    (root / "testing_list.txt").write_text(
        "yes/abc1_nohash_0.wav\nno/abc1_nohash_0.wav\nno/abc2_nohash_0.wav\n"
    )
    return root


def test_speech_commands_official_lists(tmp_path, shared_data):
    _fake_speech_commands(tmp_path / "speech_commands", shared_data)
    dm = SpeechCommandsDataModule(str(tmp_path), num_classes=2, batch_size=2, sample_rate_hz=16000)
    dm.setup()
    assert dm.classes == ["no", "yes"]  # _background_noise_ is not a class
    assert [(p.parent.name, p.name) for p, _ in dm.data_test.items] == [
        ("no", "abc1_nohash_0.wav"),
        ("no", "abc2_nohash_0.wav"),
        ("yes", "abc1_nohash_0.wav"),
    ]
    assert len(dm.data_val) == 2 and len(dm.data_train) == 7
    waves, labels, _ = next(iter(dm.train_dataloader()))
    assert waves.shape == (2, 16000)  # 8 kHz files resampled to 16 kHz, 1-s clips
    with pytest.raises(ConfigError, match="data.num_classes=35.*set data.num_classes=2"):
        SpeechCommandsDataModule(str(tmp_path)).setup()


def test_speech_commands_offline_error_names_archive(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        SpeechCommandsDataModule(
            str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), download=False
        ).setup()
    msg = str(e.value)
    assert audio_download.SPEECH_COMMANDS_URL in msg and audio_download.SPEECH_COMMANDS_SHA256 in msg
    assert str(tmp_path / "data" / "speech_commands" / "speech_commands_v0.02.tar.gz") in msg

    def no_network(url, **kw):
        raise OSError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(ConfigError, match="download failed.*no route to host.*speech_commands_v0.02.tar.gz"):
        SpeechCommandsDataModule(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")).setup()


def test_speech_commands_archive_checksum(tmp_path, shared_data):
    src = _fake_speech_commands(tmp_path / "src", shared_data)
    (tmp_path / "data" / "speech_commands").mkdir(parents=True)
    with tarfile.open(tmp_path / "data" / "speech_commands" / "speech_commands_v0.02.tar.gz", "w:gz") as tf:
        tf.add(src, arcname=".")
    with pytest.raises(ConfigError, match="expected af14739e"):
        SpeechCommandsDataModule(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")).setup()


# ---------------------------------------------------------------- audio folder and bad inputs


def _folder_dm(root: Path, **kw) -> AudioFolderDataModule:
    kw = {"num_classes": 2, "sample_rate_hz": 8000, "batch_size": 4, "split_fractions": [0.6, 0.2, 0.2], **kw}
    return AudioFolderDataModule(str(root), **kw)


def test_audio_folder_splits(tmp_path, shared_data):
    root = fsdd_folder(shared_data, tmp_path / "clips")
    dm = _folder_dm(root)
    dm.setup()
    assert dm.classes == ["one", "zero"] and (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (
        12,
        4,
        4,
    )
    with pytest.raises(ConfigError, match="data.num_classes=3.*set data.num_classes=2"):
        _folder_dm(root, num_classes=3).setup()


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_wav_is_skipped_with_warning_or_raises(tmp_path, shared_data, caplog, kind):
    root = fsdd_folder(shared_data, tmp_path / "clips")
    bad = write_bad(kind, root / "zero" / f"bad_{kind}.wav", root / "zero" / "0_jackson_0.wav")
    with caplog.at_level(logging.WARNING):
        dm = _folder_dm(root)
        dm.setup()
    everything = [p for ds in (dm.data_train, dm.data_val, dm.data_test) for p, _ in ds.items]
    assert bad not in everything and len(everything) == 20
    assert f"Skipping bad data file {bad}" in caplog.text and "Skipped 1 bad audio files" in caplog.text
    with pytest.raises(BadFileError, match=f"bad_{kind}.wav"):
        _folder_dm(root, on_bad_file="error").setup()


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_decode_audio_rejects(tmp_path, shared_data, kind):
    bad = write_bad(kind, tmp_path / "bad.wav", shared_data / "fsdd/recordings/0_jackson_0.wav")
    with pytest.raises(BadAudioError):
        decode_audio(bad, 8000)


def test_other_rate_stereo_is_resampled_and_mixed(tmp_path, shared_data):
    root = fsdd_folder(shared_data, tmp_path / "clips")
    stereo = tone(0.5, 44100, 440.0, channels=2)  # right channel twice the left
    sf.write(root / "one" / "stereo_44k.wav", stereo, 44100, subtype="PCM_16")
    wave = decode_audio(root / "one" / "stereo_44k.wav", 8000)
    assert wave.shape == (4000,)
    ref = torch.from_numpy(tone(0.5, 8000, 440.0)) * 0.75  # the mean of 0.5x and 1.0x
    assert torch.allclose(wave[200:-200], ref[200:-200], atol=0.02)
    dm = _folder_dm(root, clip_s=None)
    dm.setup()
    assert not dm.on_bad.skipped
    kept = [p.name for ds in (dm.data_train, dm.data_val, dm.data_test) for p, _ in ds.items]
    assert "stereo_44k.wav" in kept


def test_clip_shorter_than_stft_window_is_padded(tmp_path, shared_data):
    from bigmodel.nets.audio_frontend import LogMelFrontend

    root = fsdd_folder(shared_data, tmp_path / "clips")
    sf.write(root / "zero" / "tiny.wav", tone(0.005, 8000), 8000, subtype="PCM_16")  # 40 samples
    fe = LogMelFrontend(8000, n_mels=40, win_ms=25, hop_ms=10).eval()  # window 200 samples, n_fft 256
    for clip_s in (None, 1.0):
        dm = _folder_dm(root, clip_s=clip_s, split_fractions=[1.0, 0.0, 0.0] if clip_s else [0.6, 0.2, 0.2])
        dm.setup()
        ds = next(d for d in (dm.data_train, dm.data_val, dm.data_test) if "tiny.wav" in _names(d))
        wave, _ = ds[_names(ds).index("tiny.wav")]
        assert wave.shape == ((8000,) if clip_s else (40,))
        feats = fe(wave.unsqueeze(0))
        assert feats.shape == (1, 40, fe.num_frames(wave.shape[0])) and torch.isfinite(feats).all()


def test_empty_class_folder(tmp_path, shared_data):
    root = fsdd_folder(shared_data, tmp_path / "clips")
    (root / "two").mkdir()
    (root / "two" / "notes.txt").write_text("no audio here")
    with pytest.raises(ConfigError, match="two.*holds no"):
        _folder_dm(root).setup()
    dm = _folder_dm(root, drop_empty_classes=True)
    dm.setup()
    assert dm.classes == ["one", "zero"]


def test_fit_clip_and_pad_collate():
    x = torch.arange(10.0)
    assert torch.equal(fit_clip(x, 4, random=False), torch.tensor([3.0, 4, 5, 6]))
    padded = fit_clip(x, 14, random=False)
    assert padded.shape == (14,) and torch.equal(padded[2:12], x)
    starts = {int(fit_clip(x, 4, random=True)[0]) for _ in range(60)}
    assert len(starts) > 3 and starts <= set(range(7))
    waves, labels, lengths = pad_collate([(torch.ones(3), 1), (torch.ones(5), 0)])
    assert waves.shape == (2, 5) and lengths.tolist() == [3, 5] and labels.tolist() == [1, 0]
    assert waves[0, 3:].abs().sum() == 0
    # pad_sequence: float32 out whatever comes in, end-padded with zeros, rows kept in order
    waves, _, lengths = pad_collate([(torch.full((2,), 2.0, dtype=torch.float64), 0), (torch.ones(4), 1)])
    assert waves.dtype == torch.float32 and waves.tolist() == [[2.0, 2.0, 0.0, 0.0], [1.0] * 4]


def test_bad_clip_settings():
    with pytest.raises(ConfigError, match="clip_s"):
        AudioFolderDataModule("x", clip_s=0)
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        AudioFolderDataModule("x", sample_rate_hz=0)
    assert np.isclose(AudioFolderDataModule("x", clip_s=0.5, sample_rate_hz=16000).clip_samples, 8000)
