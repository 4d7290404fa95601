"""bigmodel.predict on a real digits checkpoint: rows, error rows, strict mode and the bad-input errors."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import pytest
import torch

from bigmodel.inference.loader import load_model
from bigmodel.inference.rows import COLUMNS, read_csv
from bigmodel.predict import predict
from bigmodel.utils.errors import ConfigError


def _cfg(make_cfg, ckpt, *overrides):
    return make_cfg([f"ckpt_path={ckpt}", "progress_bar=false", *overrides], config_name="predict")


def _write_wav(path: Path, frames: int = 800) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x01" * frames)
    return path


def test_folder_with_a_bad_file_gives_an_error_row_and_the_rest(make_cfg, digits_ckpt, digit_pngs, tmp_path):
    src, labels = digit_pngs
    folder = tmp_path / "imgs"
    shutil.copytree(src, folder)
    (folder / "broken.png").write_bytes(b"this is not a png")
    cfg = _cfg(make_cfg, digits_ckpt, f"inputs={folder}", "batch_size=16", "top_k=3")
    rows = predict(cfg)
    assert len(rows) == 41
    bad = [r for r in rows if r["error"]]
    assert (
        len(bad) == 1 and bad[0]["path"].endswith("broken.png") and "cannot decode image" in bad[0]["error"]
    )
    good = [r for r in rows if not r["error"]]
    acc = sum(int(r["label"]) == y for r, y in zip(good, labels, strict=True)) / len(labels)
    assert acc >= 0.8, acc  # a real trained model, not a constant answer
    on_disk = read_csv(Path(cfg.paths.output_dir) / "predictions.csv")
    assert list(on_disk[0]) == COLUMNS and len(on_disk) == 41
    top = on_disk[0]["top_k"]
    assert len(top) == 3 and top[0][0] == on_disk[0]["label"] and top[0][1] >= top[1][1] >= top[2][1]
    assert on_disk[0]["prob"] == pytest.approx(top[0][1])


def test_probabilities_match_the_module_on_the_same_images(make_cfg, digits_ckpt, digit_pngs):
    src, _ = digit_pngs
    rows = predict(_cfg(make_cfg, digits_ckpt, f"inputs={src}/00*.png", "top_k=10"))
    loaded = load_model(digits_ckpt)
    x = torch.stack([loaded.pre.load_file(src / f"{i:03d}.png") for i in range(10)])
    with torch.no_grad():
        probs = loaded.module.predict_step(loaded.pre.adapter(x))
    for row, p in zip(rows, probs, strict=True):
        got = dict(row["top_k"])
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-4)
        for k, name in enumerate(loaded.class_names):
            assert got[name] == pytest.approx(float(p[k]), abs=1e-5)


def test_strict_stops_at_the_first_bad_file(make_cfg, digits_ckpt, digit_pngs, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(digit_pngs[0], folder)
    (folder / "000_broken.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="strict=true.*000_broken.png"):
        predict(_cfg(make_cfg, digits_ckpt, f"inputs={folder}", "strict=true"))


def test_a_wav_given_to_an_image_model_names_both_kinds(make_cfg, digits_ckpt, tmp_path):
    wav = _write_wav(tmp_path / "speech.wav")
    with pytest.raises(ConfigError, match=r"audio files.*an image model.*takes image") as e:
        predict(_cfg(make_cfg, digits_ckpt, f"inputs={wav}"))
    assert "digits_cnn" in str(e.value)
    with pytest.raises(ConfigError, match="text=... is for text models"):
        predict(_cfg(make_cfg, digits_ckpt, "text=hello"))


def test_a_wav_inside_an_image_folder_is_an_error_row(make_cfg, digits_ckpt, digit_pngs, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(digit_pngs[0] / "000.png", folder / "a.png")
    _write_wav(folder / "b.wav")
    rows = predict(_cfg(make_cfg, digits_ckpt, f"inputs={folder}"))
    assert [bool(r["error"]) for r in rows] == [False, True]
    assert "audio file" in rows[1]["error"] and "image model" in rows[1]["error"]


@pytest.mark.parametrize(
    ("ckpt", "match"),
    [
        ("missing.ckpt", "Checkpoint not found"),
        ("last", "needs the experiment"),
        ("???", "needs a checkpoint"),
    ],
)
def test_missing_or_unknown_checkpoint_is_a_clear_error(make_cfg, tmp_path, ckpt, match):
    with pytest.raises(ConfigError, match=match):
        predict(make_cfg([f"ckpt_path={ckpt}", f"inputs={tmp_path}"], config_name="predict"))


def test_nothing_to_predict_and_no_match(make_cfg, digits_ckpt, tmp_path):
    with pytest.raises(ConfigError, match="Nothing to predict"):
        predict(_cfg(make_cfg, digits_ckpt))
    with pytest.raises(ConfigError, match="no file matches"):
        predict(_cfg(make_cfg, digits_ckpt, f"inputs={tmp_path}/nope/*.png"))


def test_top_k_json_is_valid_in_the_csv(make_cfg, digits_ckpt, digit_pngs):
    cfg = _cfg(make_cfg, digits_ckpt, f"inputs={digit_pngs[0]}/000.png", "top_k=20")
    predict(cfg)
    text = (Path(cfg.paths.output_dir) / "predictions.csv").read_text().splitlines()
    assert text[0] == ",".join(COLUMNS)
    row = read_csv(Path(cfg.paths.output_dir) / "predictions.csv")[0]
    assert len(row["top_k"]) == 10  # clipped to the 10 classes
    assert json.loads(json.dumps(row["top_k"])) == row["top_k"]
