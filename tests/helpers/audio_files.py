"""Builders of small audio folders and bad audio files for the audio tests (all under tmp_path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

FSDD_NAMES = {  # a few real FSDD recordings per digit
    "zero": [f"0_jackson_{i}.wav" for i in range(6)] + [f"0_theo_{i}.wav" for i in range(4)],
    "one": [f"1_jackson_{i}.wav" for i in range(6)] + [f"1_theo_{i}.wav" for i in range(4)],
}


def fsdd_folder(shared_data: Path, root: Path, classes: dict[str, list[str]] = FSDD_NAMES) -> Path:
    """``root/<class>/<fsdd file>`` copied from ../shared/data/fsdd/recordings."""
    for cls, names in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(shared_data / "fsdd" / "recordings" / name, root / cls / name)
    return root


def tone(seconds: float, sample_rate_hz: int, freq_hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate_hz)) / sample_rate_hz
    x = 0.5 * np.sin(2 * np.pi * freq_hz * t).astype(np.float32)
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x


def write_bad(kind: str, path: Path, good: Path) -> Path:
    """Write one bad file of ``kind`` at ``path`` (``good`` is a valid WAV to derive it from)."""
    data = good.read_bytes()
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "header_only":
        sf.write(path, np.zeros(0, np.float32), 8000, subtype="PCM_16")
    elif kind == "truncated_header":
        path.write_bytes(data[:30])
    elif kind == "truncated_data":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        bad = bytearray(data)
        bad[8:16] = b"GARBAGE!"  # no longer RIFF/WAVE
        path.write_bytes(bytes(bad))
    elif kind == "not_audio":
        path.write_text("this is a text file with a .wav extension\n" * 50)
    else:
        raise ValueError(kind)
    return path


BAD_KINDS = ["zero_byte", "header_only", "truncated_header", "truncated_data", "corrupt", "not_audio"]
