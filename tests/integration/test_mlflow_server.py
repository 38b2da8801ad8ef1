"""The registry against a real ``mlflow server`` on loopback, started by ``mlflow/server.sh``."""

from __future__ import annotations

import pytest

from callqa.settings import Settings
from tests.unit.test_registry import exercise_registry

pytestmark = pytest.mark.integration


def test_registry_on_a_real_server(server) -> None:
    url, home = server
    exercise_registry(Settings(home=home / "client", mlflow_uri=url))
    assert (home / "mlflow" / "mlflow.db").is_file()  # the server's store, not the client's
    assert any((home / "mlflow" / "artifacts").rglob("weights.txt"))  # artifacts went through the server
    assert not (home / "client" / "mlflow").exists()
