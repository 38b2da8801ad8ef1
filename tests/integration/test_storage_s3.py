"""The S3 path of the object store against a local S3-compatible server (moto's server mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callqa.errors import BadInput, NotFound, ServiceUnavailable
from callqa.process import free_port
from callqa.settings import Settings
from callqa.storage import S3Store, open_store

pytestmark = pytest.mark.integration


def test_objects_round_trip_through_s3(s3_endpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        store="s3://callqa-test/audio-store", s3_endpoint=s3_endpoint, s3_access_key="testing", s3_secret_key="testing"
    )
    store = open_store(settings)
    assert isinstance(store, S3Store)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF" + bytes(100))
    assert store.put_file("calls/a.wav", wav) == "s3://callqa-test/audio-store/calls/a.wav"
    store.put_bytes("results/a.json", b"{}")
    assert store.get_bytes("calls/a.wav") == wav.read_bytes()
    assert store.exists("results/a.json") and not store.exists("results/b.json")
    assert store.list() == ["calls/a.wav", "results/a.json"]
    assert store.list("calls/") == ["calls/a.wav"]
    with pytest.raises(NotFound):
        store.get_bytes("results/missing.json")


def test_a_server_that_is_down_is_a_clear_error() -> None:
    store = S3Store("callqa-down", endpoint=f"http://127.0.0.1:{free_port()}", access_key="k", secret_key="s")
    with pytest.raises(ServiceUnavailable, match="does not answer"):
        store.exists("x")
    with pytest.raises(BadInput, match="bucket name"):
        S3Store("b", endpoint="http://127.0.0.1:9", access_key="k", secret_key="s")
