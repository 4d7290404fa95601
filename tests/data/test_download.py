"""The one downloader: atomic, checksum-verified, clear offline errors. No test touches the network:
``urllib.request.urlopen`` is replaced."""

from __future__ import annotations

import hashlib
import io
import urllib.request

import pytest

from bigmodel.data.download import fetch, verify_sha256
from bigmodel.utils.errors import ConfigError

PAYLOAD = b"hello dataset\n" * 1000
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
URL = "https://example.org/data.bin"


@pytest.fixture
def served(monkeypatch):
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(PAYLOAD)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def test_fetch_downloads_once_and_verifies(tmp_path, served):
    dest = tmp_path / "cache" / "data.bin"
    assert fetch(URL, dest, GOOD, tmp_path / "local.bin") == dest and dest.read_bytes() == PAYLOAD
    fetch(URL, dest, GOOD, tmp_path / "local.bin")
    assert served == [URL]  # the second call found the file
    assert [p.name for p in dest.parent.iterdir()] == ["data.bin"]  # no temp file left


def test_fetch_checksum_mismatch_deletes_the_download(tmp_path, served):
    dest = tmp_path / "data.bin"
    with pytest.raises(ConfigError, match=f"(?s)Checksum mismatch for {URL}.*expected {'0' * 64}.*local.bin"):
        fetch(URL, dest, "0" * 64, tmp_path / "local.bin")
    assert not dest.exists()


def test_fetch_offline_names_url_path_and_checksum(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConfigError, match=f"(?s)download failed.*unreachable.*{URL}.*local.bin.*{GOOD}"):
        fetch(URL, tmp_path / "data.bin", GOOD, tmp_path / "local.bin")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_verify_sha256_keeps_the_users_file(tmp_path):
    f = tmp_path / "mine.bin"
    f.write_bytes(PAYLOAD)
    verify_sha256(f, GOOD)
    with pytest.raises(ConfigError, match="expected 0000.*Delete it"):
        verify_sha256(f, "0" * 64, "Delete it and retry.")
    assert f.read_bytes() == PAYLOAD
