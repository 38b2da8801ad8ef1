"""Recordings and results through S3 (moto's server on 127.0.0.1): the API stores the audio there
before the 202, the worker reads it back, analyses it with the real speech models and writes the
result there once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callqa.settings import Settings
from callqa.storage import open_store
from serving.local import local_app
from tests.conftest import run_callqa

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def test_audio_and_results_live_in_s3(s3_endpoint: str, models_dir: Path, tmp_path: Path) -> None:
    gen = run_callqa("generate", "--audio", "--stereo", "--n", "1", "--seed", "17", "--out", str(tmp_path / "calls"))
    assert gen.returncode == 0, gen.stderr
    wav = next((tmp_path / "calls").glob("*.wav"))
    settings = Settings(
        home=tmp_path / "home",
        store="s3://callqa-serving/prod",
        s3_endpoint=s3_endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        speech={"models_dir": models_dir, "asr": "nemo"},
        serving={"reload_seconds": 0},
    )
    with TestClient(local_app(settings)) as client:
        deadline = time.time() + 300
        while client.get("/readyz").status_code != 200:
            assert time.time() < deadline, client.get("/readyz").json()
            time.sleep(0.5)
        r = client.post("/v1/calls", data={"call_id": "s3-call", "stereo_map": "agent=0,client=1"},
                        files={"audio": (wav.name, wav.read_bytes(), "audio/wav")})  # fmt: skip
        assert r.status_code == 202, r.text
        store = open_store(settings)
        keys = store.list("audio/s3-call/")
        assert len(keys) == 1 and store.get_bytes(keys[0]) == wav.read_bytes()
        while (job := client.get("/v1/calls/s3-call").json())["status"] not in ("done", "failed"):
            assert time.time() < deadline, job
            time.sleep(0.5)
    assert job["status"] == "done", job
    assert job["result"]["audio"]["roles_method"] == "channel_map"
    stored = json.loads(store.get_bytes("results/s3-call.json"))
    assert stored["turns"] == job["result"]["turns"] and stored["answers"] == job["result"]["answers"]
