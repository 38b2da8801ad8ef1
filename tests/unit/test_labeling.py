"""The labelling loop without a server: config, conversions, value parsing, the retraining trigger."""

from __future__ import annotations

import random
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callqa.errors import BadInput, ConfigError
from callqa.schemas import ErrorId, QuestionKind, Questionnaire
from callqa.settings import LabelStudioSettings, Settings
from callqa.speech.segments import SpeakerSegment
from callqa.storage import LocalStore, check_key, open_store
from labeling import webhook
from labeling.annotator import Gold, spoil
from labeling.config import label_config
from labeling.convert import labels_to_results, parse_value, results_to_labels, task_data
from labeling.pull import field_matches


def test_config_has_a_label_per_question_and_every_error(questionnaire: Questionnaire) -> None:
    root = ET.fromstring(label_config(questionnaire))
    answer_labels = [e.get("value") for e in root.find("ParagraphLabels")]
    assert answer_labels == questionnaire.ids
    choices = {c.get("name"): [x.get("value") for x in c] for c in root.iter("Choices")}
    assert choices["errors"] == [e.value for e in ErrorId]
    assert "spam" in choices["call_type"]
    assert [e.get("value") for e in root.find("View").find("Labels")] == ["AGENT", "CLIENT"]
    assert label_config(questionnaire) == label_config(questionnaire)  # deterministic: updates only on change


@pytest.mark.parametrize("clash", ["agent", "client", "no_next_step", "spam", "errors", "transcript"])
def test_a_question_id_that_clashes_with_a_label_is_refused(questionnaire: Questionnaire, clash: str) -> None:
    data = questionnaire.model_dump()
    data["questions"][0]["id"] = clash
    with pytest.raises(ConfigError, match=f"'{clash}' is a"):
        label_config(Questionnaire.model_validate(data))


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1 500 000", QuestionKind.MONEY_RUB, 1500000),
        ("2500,0", QuestionKind.MONEY_RUB, 2500),
        ("2.5", QuestionKind.NUMBER, 2.5),
        ("да", QuestionKind.YES_NO, True),
        ("Нет", QuestionKind.YES_NO, False),
        ("Абамет", QuestionKind.ORGANIZATION, "Абамет"),
        ("  ", QuestionKind.TEXT, None),
        ("около миллиона", QuestionKind.MONEY_RUB, "около миллиона"),
    ],
)
def test_typed_values_are_normalised_by_kind(text: str, kind: QuestionKind, value: object) -> None:
    assert parse_value(text, kind) == value


def test_labels_round_trip_through_label_studio_results(supplier_call, questionnaire: Questionnaire) -> None:
    call = supplier_call.model_copy(update={"errors": [ErrorId.NO_NEXT_STEP], "nps": 8, "notes": "ok"})
    segments = [SpeakerSegment(0.5, 3.0, "AGENT"), SpeakerSegment(3.2, 4.0, "CLIENT")]
    data = task_data(call, "/data/local-files/?d=a.wav", questionnaire)
    back = results_to_labels(data, labels_to_results(call, segments, 10.0), questionnaire)
    assert back.problems == []
    assert back.segments == segments
    expected = call.model_copy(update={"answers": {q: call.answers.get(q) for q in questionnaire.ids}})
    assert back.call.json_line() == expected.json_line()


def test_spans_outside_client_turns_are_reported_not_kept(supplier_call, questionnaire: Questionnaire) -> None:
    data = task_data(supplier_call, None, questionnaire)
    bad = {
        "id": "x",
        "from_name": "answer",
        "type": "paragraphlabels",
        "value": {"start": 0, "end": 0, "startOffset": 0, "endOffset": 5, "paragraphlabels": ["current_supplier"]},
    }
    across = {**bad, "value": {**bad["value"], "start": 1, "end": 3}}
    back = results_to_labels(data, [bad, across], questionnaire)
    assert back.call.answers["current_supplier"] is None
    assert any("spoken by AGENT" in p for p in back.problems)
    assert any("inside one turn" in p for p in back.problems)


def test_noise_spoils_some_fields_and_agreement_sees_it(supplier_call, questionnaire: Questionnaire) -> None:
    gold = Gold(supplier_call, [SpeakerSegment(0.5, 3.0, "AGENT")])
    assert spoil(gold, 0.0, random.Random(0)) is gold
    noisy = spoil(gold, 1.0, random.Random(0))
    data = task_data(supplier_call, None, questionnaire)
    a = results_to_labels(data, labels_to_results(gold.call, gold.segments), questionnaire)
    b = results_to_labels(data, labels_to_results(noisy.call, noisy.segments), questionnaire)
    matches = field_matches(a, b, questionnaire.ids)
    answered = [q for q, g in supplier_call.answers.items() if g is not None]
    assert all(matches[f"answer:{q}"] for q in questionnaire.ids if q not in answered)
    assert not matches["speakers"]
    assert field_matches(a, a, questionnaire.ids) == dict.fromkeys(matches, True)


def test_object_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ("../x", "/etc/passwd", "a//b", "a/./b", ""):
        with pytest.raises(BadInput):
            store.put_bytes(key, b"x")
    assert check_key("audio/a.wav") == "audio/a.wav"
    store.put_bytes("audio/a.wav", b"RIFF")
    assert store.get_bytes("audio/a.wav") == b"RIFF" and store.list("audio/") == ["audio/a.wav"]
    with pytest.raises(BadInput, match="CALLQA_S3_ENDPOINT"):
        open_store(Settings(store="s3://bucket/prefix"))


def _settings(tmp_path: Path, threshold: int) -> Settings:
    return Settings(home=tmp_path, labelstudio=LabelStudioSettings(retrain_after=threshold))


def test_events_count_across_restarts_and_start_one_job(tmp_path: Path) -> None:
    store = webhook.EventStore(tmp_path / "labelling.db")
    assert store.record("ANNOTATION_CREATED", 1, 1, threshold=3) is None
    assert store.record("ANNOTATION_CREATED", 1, 1, threshold=3) is None
    store = webhook.EventStore(tmp_path / "labelling.db")  # a restart keeps the count
    assert store.pending() == 2
    job = store.record("ANNOTATIONS_CREATED", 1, 2, threshold=3)
    assert job == 1 and store.pending() == 0
    assert store.next_job() == 1 and store.next_job() is None
    assert store.requeue_interrupted() == 1  # the process died while it ran
    assert store.next_job() == 1
    store.finish(1, "done", {"ok": True})
    assert store.jobs()[0]["status"] == "done" and store.jobs()[0]["attempts"] == 2


def test_the_receiver_starts_the_job_after_n_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    monkeypatch.setattr(webhook, "run_job", lambda job_id, settings: ran.append(job_id) or {"job": job_id})
    settings = _settings(tmp_path, threshold=2)
    with TestClient(webhook.create_app(settings)) as client:
        event = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 5}}
        assert client.post("/labelstudio/webhook", json={"action": "PROJECT_UPDATED"}).json()["counted"] == 0
        assert client.post("/labelstudio/webhook", json=event).json() == {"counted": 1, "pending": 1, "job": None}
        assert client.post("/labelstudio/webhook", json=event).json()["job"] == 1
        for _ in range(100):
            jobs = client.get("/labelstudio/status").json()["jobs"]
            if jobs and jobs[0]["status"] == "done":
                break
            time.sleep(0.05)
        assert ran == [1] and jobs[0]["outcome"] == {"job": 1}
        assert client.post("/labelstudio/webhook", content=b"not json").status_code == 400
        assert client.post("/labelstudio/webhook", json=[1, 2]).status_code == 422


def test_an_interrupted_job_resumes_when_the_receiver_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, threshold=1)
    store = webhook.EventStore(tmp_path / "labelling.db")
    store.record("ANNOTATION_CREATED", 1, 1, threshold=1)
    assert store.next_job() == 1  # ... and then the process was killed
    ran: list[int] = []
    monkeypatch.setattr(webhook, "run_job", lambda job_id, settings: ran.append(job_id) or {})
    with TestClient(webhook.create_app(settings)) as client:
        for _ in range(100):
            if client.get("/labelstudio/status").json()["jobs"][0]["status"] == "done":
                break
            time.sleep(0.05)
    assert ran == [1]
