"""The API on the in-process engine: auth, limits, errors, transcripts, questionnaires, durable jobs."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from callqa.errors import BadInput, Conflict, NotFound
from callqa.schemas import CallResult
from callqa.settings import Settings
from callqa.storage import LocalStore
from serving.engine import AudioMeta, Engine
from serving.jobs import JobStatus, JobStore
from serving.local import local_app
from serving.worker import JobRunner, result_key

KEY = {"X-API-Key": "k-test"}


def wav_bytes(seconds: float = 1.0, rate: int = 8000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal(int(seconds * rate))).astype("float32"), rate, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("serving")
    settings = Settings(
        home=home,
        api_keys=["k-other", "k-test"],
        serving={"preload_speech": False, "max_upload_mb": 0.5, "max_json_mb": 0.2, "reload_seconds": 0},
    )
    with TestClient(local_app(settings, run_workers=False)) as c:
        deadline = time.time() + 120
        while c.get("/readyz").status_code != 200:
            assert time.time() < deadline, c.get("/readyz").json()
            time.sleep(0.2)
        yield c


def transcript(supplier_call) -> dict:
    return {"call_id": supplier_call.call_id, "turns": [t.model_dump(exclude_none=True) for t in supplier_call.turns]}


def test_health_is_open_everything_else_needs_a_key(client, supplier_call):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["models"]["answers"] == "zero-shot"
    for method, path, kwargs in [
        ("get", "/v1/questionnaires", {}),
        ("get", "/metrics", {}),
        ("get", "/v1/calls/x1", {}),
        ("post", "/v1/transcripts", {"json": transcript(supplier_call)}),
    ]:
        assert getattr(client, method)(path, **kwargs).status_code == 401
        bad = getattr(client, method)(path, headers={"X-API-Key": "k-test-"}, **kwargs)
        assert bad.status_code == 401 and bad.json()["detail"] == "missing or wrong X-API-Key"
    assert client.get("/v1/questionnaires", headers={"X-API-Key": "k-other"}).status_code == 200


def test_a_transcript_is_answered_at_once(client, supplier_call):
    r = client.post("/v1/transcripts", json=transcript(supplier_call), headers=KEY)
    assert r.status_code == 200
    result = CallResult.model_validate(r.json())
    supplier = next(a for a in result.answers if a.question_id == "current_supplier")
    gold = supplier_call.answers["current_supplier"]
    assert gold.text in supplier.text or supplier.text in gold.text
    assert result.metrics.agent_turns > 0 and result.models["answers"] == "zero-shot"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"call_id": "a", "turns": []}, 422, "turns"),
        ({"call_id": "a", "turns": [{"speaker": "AGENT", "text": "  "}]}, 422, "the transcript is empty"),
        ({"call_id": "a", "turns": [{"speaker": "BOSS", "text": "да"}]}, 422, "speaker"),
        ({"turns": [{"speaker": "AGENT", "text": "да"}]}, 422, "call_id"),
    ],
)
def test_bad_transcripts_get_422_with_the_reason(client, body, status, reason):
    r = client.post("/v1/transcripts", json=body, headers=KEY)
    assert r.status_code == status and reason in r.text


def test_oversize_bodies_get_413_before_being_read(client):
    big = {"call_id": "a", "turns": [{"speaker": "AGENT", "text": "слово " * 60_000}]}
    r = client.post("/v1/transcripts", json=big, headers=KEY)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = client.post("/v1/calls", files={"audio": ("a.wav", wav_bytes(40, 16000), "audio/wav")}, headers=KEY)
    assert r.status_code == 413


def test_uploads_unknown_ids_and_conflicts(client):
    assert client.get("/v1/calls/nope", headers=KEY).status_code == 404
    r = client.post("/v1/calls", files={"audio": ("a.txt", b"hello", "text/plain")}, headers=KEY)
    assert r.status_code == 415
    r = client.post("/v1/calls", files={"audio": ("a.wav", b"RIFF....WAVEjunk", "audio/wav")}, headers=KEY)
    assert r.status_code == 422 and "audio" in r.json()["detail"]
    r = client.post("/v1/calls", files={"audio": ("a.wav", b"", "audio/wav")}, headers=KEY)
    assert r.status_code == 422
    r = client.post("/v1/calls", data={"call_id": "../x"}, files={"audio": ("a.wav", wav_bytes(), "audio/wav")},
                    headers=KEY)  # fmt: skip
    assert r.status_code == 422
    r = client.post("/v1/calls", data={"stereo_map": "agent=5"}, files={"audio": ("a.wav", wav_bytes(), "audio/wav")},
                    headers=KEY)  # fmt: skip
    assert r.status_code == 422 and "stereo_map" in r.json()["detail"]
    r = client.post("/v1/calls", data={"questionnaire": "nope"}, files={"audio": ("a.wav", wav_bytes(), "audio/wav")},
                    headers=KEY)  # fmt: skip
    assert r.status_code == 404

    first = client.post("/v1/calls", data={"call_id": "c-1", "manager_id": "m7", "stereo_map": "agent=1"},
                        files={"audio": ("a.wav", wav_bytes(), "audio/wav")}, headers=KEY)  # fmt: skip
    assert first.status_code == 202, first.text
    assert first.headers["location"] == "/v1/calls/c-1" and first.json()["status"] == "queued"
    again = client.post("/v1/calls", data={"call_id": "c-1"}, files={"audio": ("b.wav", wav_bytes(), "audio/wav")},
                        headers=KEY)  # fmt: skip
    assert again.status_code == 200 and again.json()["created_at"] == first.json()["created_at"]
    other = client.post("/v1/calls", data={"call_id": "c-1"},
                        files={"audio": ("a.wav", wav_bytes(seed=1), "audio/wav")}, headers=KEY)  # fmt: skip
    assert other.status_code == 409
    status = client.get("/v1/calls/c-1", headers=KEY).json()
    assert status["status"] == "queued" and status["result"] is None
    # no call id: the audio's hash names the call, so a resend finds the same job
    a = client.post("/v1/calls", files={"audio": ("x.wav", wav_bytes(seed=3), "audio/wav")}, headers=KEY)
    b = client.post("/v1/calls", files={"audio": ("y.wav", wav_bytes(seed=3), "audio/wav")}, headers=KEY)
    assert (a.status_code, b.status_code) == (202, 200) and a.json()["call_id"] == b.json()["call_id"]


def test_questionnaires_can_be_stored_and_used(client, questionnaire, supplier_call):
    listed = client.get("/v1/questionnaires", headers=KEY).json()
    assert [q["name"] for q in listed] == [questionnaire.name] and listed[0]["source"] == "default"
    short = questionnaire.model_copy(update={"name": "short", "questions": questionnaire.questions[:2]})
    body = short.model_dump(mode="json")
    assert client.put("/v1/questionnaires/short", json=body, headers=KEY).status_code == 201
    assert client.put("/v1/questionnaires/short", json=body, headers=KEY).status_code == 200
    assert client.put("/v1/questionnaires/other", json=body, headers=KEY).status_code == 422
    dup = {**body, "questions": [body["questions"][0], body["questions"][0]]}
    assert "duplicate question ids" in client.put("/v1/questionnaires/short", json=dup, headers=KEY).text
    assert client.put("/v1/questionnaires/short", json={"name": "short"}, headers=KEY).status_code == 422
    assert {q["name"] for q in client.get("/v1/questionnaires", headers=KEY).json()} == {questionnaire.name, "short"}
    r = client.post("/v1/transcripts?questionnaire=short", json=transcript(supplier_call), headers=KEY)
    assert r.status_code == 200
    assert {a["question_id"] for a in r.json()["answers"]} <= {q.id for q in short.questions}
    assert r.json()["questionnaire"] == "short"
    assert (
        client.post("/v1/transcripts?questionnaire=nope", json=transcript(supplier_call), headers=KEY).status_code
        == 404
    )


def test_metrics_count_requests_and_show_queue_and_models(client):
    client.get("/v1/calls/nope", headers=KEY)
    text = client.get("/metrics", headers=KEY).text
    assert 'callqa_requests_total{method="GET",route="/v1/calls/{call_id}",status="404"}' in text
    assert 'callqa_model_info{model="zero-shot",task="answers"} 1.0' in text
    assert "callqa_jobs{status=" in text and "callqa_request_seconds_bucket" in text


# --- the job store and workers ----------------------------------------------------------------


class ScriptedBackend:
    """Stands in for the models in the runner's own tests: answers per call id as scripted."""

    def __init__(self, outcomes: dict[str, list], result: CallResult) -> None:
        self.outcomes = outcomes
        self.result = result
        self.calls: list[str] = []

    def ready(self) -> bool:
        return True

    def audio(self, data: bytes, meta: AudioMeta, questionnaire) -> CallResult:
        self.calls.append(meta.call_id)
        outcome = self.outcomes[meta.call_id].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return self.result.model_copy(update={"call_id": meta.call_id})


def test_jobs_survive_restarts_and_are_claimed_once(tmp_path: Path, questionnaire):
    db = tmp_path / "jobs.db"
    store = JobStore(db)
    job, created = store.submit("c1", "audio/c1.wav", "sha-a", {"manager_id": "m"}, questionnaire)
    assert created and job.status == JobStatus.queued
    assert store.submit("c1", "audio/c1.wav", "sha-a", {}, questionnaire)[1] is False
    with pytest.raises(Conflict):
        store.submit("c1", "audio/c1.wav", "sha-b", {}, questionnaire)
    with pytest.raises(NotFound):
        store.get("c2")
    claimed = store.claim()
    assert claimed is not None and claimed.call_id == "c1" and claimed.attempts == 1
    assert store.claim() is None  # nobody else gets it
    # the process dies here; a new one finds the job running and queues it again
    reopened = JobStore(db)
    assert reopened.recover() == 1
    again = reopened.claim()
    assert again is not None and again.attempts == 2 and again.meta == {"manager_id": "m"}
    assert again.questionnaire == questionnaire


def test_runner_writes_each_result_once_and_retries_only_crashes(tmp_path: Path, questionnaire, supplier_call):
    from serving.engine import Engine

    result = Engine(Settings(home=tmp_path), questionnaire).transcript(supplier_call.to_call(), questionnaire)
    jobs, objects = JobStore(tmp_path / "jobs.db"), LocalStore(tmp_path / "store")
    backend = ScriptedBackend(
        {
            "ok": [None],
            "flaky": [RuntimeError("replica died"), None],
            "broken": [RuntimeError("boom")] * 3,
            "silent": [BadInput("no speech found in the recording")],
        },
        result,
    )
    for call_id in backend.outcomes:
        objects.put_bytes(f"audio/{call_id}.wav", b"RIFF")
        jobs.submit(call_id, f"audio/{call_id}.wav", call_id, {}, questionnaire)
    runner = JobRunner(jobs, objects, backend, max_attempts=3)
    while (job := jobs.claim()) is not None:
        runner.run(job)
    got = {c: jobs.get(c) for c in backend.outcomes}
    assert got["ok"].status == JobStatus.done and got["flaky"].status == JobStatus.done
    assert got["flaky"].attempts == 2
    assert got["broken"].status == JobStatus.failed and got["broken"].attempts == 3 and "boom" in got["broken"].error
    assert got["silent"].status == JobStatus.failed and got["silent"].attempts == 1  # not retried
    stored = CallResult.model_validate_json(objects.get_bytes(result_key("ok")))
    assert stored.call_id == "ok" and stored.answers == result.answers
    # a retry after a crash between writing the result and recording it keeps the first result
    objects.put_bytes(result_key("late"), b'{"first": true}')
    objects.put_bytes("audio/late.wav", b"RIFF")
    jobs.submit("late", "audio/late.wav", "late", {}, questionnaire)
    backend.outcomes["late"] = [None]
    runner.run(jobs.claim())
    assert objects.get_bytes(result_key("late")) == b'{"first": true}' and jobs.get("late").status == JobStatus.done


def test_engine_swaps_models_when_the_alias_moves(tmp_path: Path, questionnaire, supplier_call):
    from callqa import registry
    from tests.builders import register_calltype_model

    settings = Settings(home=tmp_path)
    engine = Engine(settings, questionnaire)
    assert engine.model_names() == {"answers": "zero-shot", "errors": "none", "calltype": "none"}
    assert engine.refresh() is False
    before = engine.models
    registry.promote("calltype", register_calltype_model(settings, tmp_path), settings)
    assert engine.refresh() is True
    assert engine.model_names()["calltype"] == "callqa-calltype/1" and before.call_type is None
    result = engine.transcript(supplier_call.to_call(), questionnaire)
    assert result.call_type is not None and result.models["calltype"] == "callqa-calltype/1"
    assert engine.refresh() is False


def test_an_overloaded_api_says_429_at_once(tmp_path: Path, supplier_call):
    settings = Settings(home=tmp_path, serving={"preload_speech": False, "reload_seconds": 0, "max_pending": 0})
    app = local_app(settings, run_workers=False)
    app.state.service.warm_up()
    with TestClient(app) as c:
        r = c.post("/v1/transcripts", json=transcript(supplier_call))
    assert r.status_code == 429 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]
