"""Every API operation fuzzed from its OpenAPI spec (schemathesis): no input makes a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from callqa.settings import Settings
from serving.local import local_app

pytestmark = pytest.mark.slow
KEY = "k-fuzz"


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("fuzz")
    cfg = Settings(
        home=home, api_keys=[KEY], serving={"preload_speech": False, "reload_seconds": 0, "max_upload_mb": 2}
    )
    app = local_app(cfg, run_workers=False)  # uploads are queued, not run: the speech stage is not under test
    app.state.service.warm_up()
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_no_input_makes_a_server_error(api_schema):
    operations = _operations(api_schema)
    assert {op.path for op in operations} >= {"/v1/calls", "/v1/transcripts", "/v1/questionnaires/{name}"}
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def fuzz(case):
            case.call_and_validate(headers={"X-API-Key": KEY}, checks=[not_a_server_error])

        fuzz()


def test_without_a_key_only_health_and_docs_answer(api_schema):
    for op in _operations(api_schema):

        @given(case=op.as_strategy())
        @settings(
            max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def anonymous(case):
            response = case.call(headers={})
            expected = 200 if case.path in ("/healthz", "/readyz") else 401
            assert response.status_code == expected, (case.path, response.text)

        anonymous()
