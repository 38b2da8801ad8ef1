"""Fixtures of the integration tests: real servers on 127.0.0.1, started here and stopped after."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from callqa.process import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    env = os.environ | {
        "CALLQA_HOME": str(tmp_path),
        "MLFLOW_PORT": str(port),
        "MLFLOW_BIN": str(Path(sys.executable).with_name("mlflow")),
    }
    log = (tmp_path / "mlflow-server.log").open("wb")  # a file, not a pipe: an unread pipe fills and stalls the server
    proc = subprocess.Popen(["bash", str(ROOT / "mlflow" / "server.sh")], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = (tmp_path / "mlflow-server.log").read_text(errors="replace")
                pytest.fail(f"mlflow server did not come up: {out[-2000:]}")
            time.sleep(0.5)
        yield url, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """A local S3-compatible server (moto's server mode; MinIO is not in the registries)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
