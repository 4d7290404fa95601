"""bigmodel.serve as a real process on a free loopback port: answers equal predict's rows (single and
concurrent requests), every bad request gets a 4xx JSON error while the server keeps serving, SIGTERM stops it."""

from __future__ import annotations

import base64
import io
import signal
import socket
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from bigmodel.inference.preprocess import AudioPreprocessor, TextPreprocessor
from bigmodel.predict import predict
from bigmodel.serve import ModelAPI, _Bad
from tests.conftest import start_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wav_bytes(frames: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x01" * frames)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(digits_ckpt, tmp_path_factory):
    port, logs = _free_port(), tmp_path_factory.mktemp("serve")
    proc = start_cli("bigmodel.serve", f"ckpt_path={digits_ckpt}", f"port={port}", f"paths.log_dir={logs}",
                     "max_batch_size=8", "batch_timeout=0.01", "max_body_bytes=20000", log=logs / "server.log")  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        assert proc.poll() is None, (logs / "server.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("server did not become healthy: " + (logs / "server.log").read_text()[-3000:])
    yield SimpleNamespace(url=url, proc=proc, port=port, log=logs / "server.log")
    if proc.poll() is None:
        proc.kill()


@pytest.fixture(scope="module")
def expected(digits_ckpt, digit_pngs, tmp_path_factory):
    """predict's rows for the same images, keyed by file name."""
    from tests.conftest import compose_cfg

    cfg = compose_cfg(tmp_path_factory.mktemp("pred"), [f"ckpt_path={digits_ckpt}", f"inputs={digit_pngs[0]}",
                      "progress_bar=false"], "predict")  # fmt: skip
    return {Path(r["path"]).name: r for r in predict(cfg)}


def _same(row, want):
    assert row["label"] == want["label"] and row["error"] == ""
    assert row["prob"] == pytest.approx(want["prob"], abs=1e-5)
    assert [k for k, _ in row["top_k"]] == [k for k, _ in want["top_k"]]


def test_server_answers_like_predict_and_survives_bad_requests(server, expected, digit_pngs):
    folder = digit_pngs[0]
    url = server.url
    # single requests: multipart upload and base64 JSON
    r = httpx.post(
        f"{url}/predict", files={"file": ("003.png", (folder / "003.png").read_bytes(), "image/png")}
    )
    assert r.status_code == 200, r.text
    _same(r.json(), expected["003.png"])
    assert r.json()["path"] == "003.png"
    b64 = base64.b64encode((folder / "004.png").read_bytes()).decode()
    r = httpx.post(f"{url}/predict", json={"image": b64})
    assert r.status_code == 200, r.text
    _same(r.json(), expected["004.png"])

    # concurrent requests (batched by LitServe): every answer is its own image's row
    names = sorted(expected)

    def one(name):
        return name, httpx.post(
            f"{url}/predict", files={"file": (name, (folder / name).read_bytes())}, timeout=60
        )

    with ThreadPoolExecutor(16) as pool:
        for name, resp in pool.map(one, names):
            assert resp.status_code == 200, resp.text
            _same(resp.json(), expected[name])

    # each bad request: a 4xx JSON {"error": ...}; the server keeps answering
    bad = [
        (dict(files={"file": ("x.png", b"not an image")}), 400, "cannot decode image"),
        (dict(json={"image": base64.b64encode(b"garbage").decode()}), 400, "cannot decode image"),
        (dict(json={"image": "%%% not base64"}), 400, "not valid base64"),
        (dict(json={"audio": base64.b64encode(_wav_bytes(0)).decode()}), 400, "image model"),
        (dict(json={"text": ""}), 400, "not text"),
        (dict(content=b"hello", headers={"Content-Type": "text/plain"}), 415, "not supported"),
        (dict(content=b"{oops", headers={"Content-Type": "application/json"}), 400, "not valid JSON"),
        (dict(json=["a list"]), 400, "must be an object"),
        (dict(json={"nothing": 1}), 400, "exactly one of"),
        (dict(files={"other": ("a.png", b"x")}), 400, "no field 'file'"),
        (
            dict(content=b"x" * 30000, headers={"Content-Type": "application/json"}),
            413,
            "limit of 20000 bytes",
        ),
    ]
    for kwargs, status, message in bad:
        r = httpx.post(f"{url}/predict", **kwargs)
        assert r.status_code == status, (kwargs.keys(), r.status_code, r.text)
        assert message in r.json()["error"], r.text
        assert httpx.get(f"{url}/health").status_code == 200
    r = httpx.post(f"{url}/predict", files={"file": ("003.png", (folder / "003.png").read_bytes())})
    _same(r.json(), expected["003.png"])
    assert httpx.get(f"{url}/docs").status_code == 200 and "/predict" in httpx.get(f"{url}/openapi.json").text

    # SIGTERM: clean stop with the conventional exit code, the port released
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=90) == 143, server.log.read_text()[-2000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)


def test_zero_frame_wav_and_empty_text_are_400_in_a_batch():
    """The worker-side decode of audio/text requests: each bad one is answered alone with a 400."""
    api = ModelAPI("unused.ckpt", "torch", None, None, 3)
    api.loaded = SimpleNamespace(pre=AudioPreprocessor(8000, 1.0), describe=lambda: "an audio model")
    out = api.decode_request({"audio": base64.b64encode(_wav_bytes(0)).decode()})
    assert isinstance(out, _Bad) and "no audio samples" in out.message
    ok = api.decode_request({"audio": base64.b64encode(_wav_bytes(4000)).decode()})
    assert ok[1].shape == (8000,)
    resp = api.encode_response(out)
    assert resp.status_code == 400 and b"no audio samples" in resp.body
    api.loaded = SimpleNamespace(pre=TextPreprocessor({"kind": "char", "chars": " abc"}, 16), describe=str)
    assert "empty text" in api.decode_request({"text": "   "}).message
    assert api.decode_request({"text": "abc"})[1].tolist() == [1, 2, 3]
