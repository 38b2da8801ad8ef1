"""The labelling loop against a real Label Studio on 127.0.0.1 (its own venv, installed on first use)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from callqa.dataset import read_labelled_calls, write_labelled_calls
from callqa.errors import AuthFailed, ConfigError, NotFound, ServiceUnavailable
from callqa.process import free_port
from callqa.schemas import Questionnaire
from callqa.settings import LabelStudioSettings, Settings, get_settings
from callqa.speech.segments import read_rttm
from callqa.speech.synth import render_dataset
from callqa.synthetic import generate_calls
from labeling.annotator import annotate, read_gold
from labeling.client import Studio, project_title
from labeling.pull import pull
from labeling.push import push
from labeling.server import LabelStudioServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def studio_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("labelstudio-home")
    settings = Settings(home=home, labelstudio=LabelStudioSettings(url=f"http://127.0.0.1:{free_port()}"))
    with LabelStudioServer(settings) as server:
        yield settings, server


def _settings(base: Settings, prefix: str, **labelstudio) -> Settings:
    cfg = base.labelstudio.model_copy(update={"project_prefix": prefix, **labelstudio})
    return base.model_copy(update={"labelstudio": cfg})


@pytest.fixture(scope="module")
def spoken_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spoken")
    render_dataset(generate_calls(10, seed=11), out, seed=11)
    return out


def test_push_annotate_pull_round_trips_the_gold_labels(studio_home, spoken_calls: Path, questionnaire) -> None:
    base, server = studio_home
    settings = _settings(base, "roundtrip")
    report = push([spoken_calls], questionnaire, settings=settings, show_progress=False)
    assert len(report.created) == 10 and report.config == "created"
    scores = [item["score"] for item in report.order]
    assert scores == sorted(scores)  # least sure first

    studio = Studio(settings)
    project = studio.project(project_title(questionnaire.name, settings))
    assert project.sampling == "Uncertainty sampling" and project.model_version == report.model_version
    tasks = list(studio.tasks(project.id))
    assert len(tasks) == 10
    assert all(t.predictions and t.predictions[0].model_version == report.model_version for t in tasks)
    # Label Studio serves the uploaded audio to the browser
    audio = tasks[0].data["audio"]
    r = httpx.get(server.url + audio, headers={"Authorization": f"Token {settings.labelstudio.api_key}"})
    assert r.status_code == 200 and r.content[:4] == b"RIFF"

    again = push([spoken_calls], questionnaire, settings=settings, show_progress=False)
    assert again.created == [] and len(again.unchanged) == 10
    assert len(list(studio.tasks(project.id))) == 10  # idempotent

    gold = read_gold([spoken_calls], questionnaire)
    assert len(annotate(gold, questionnaire, settings=settings).annotated) == 10
    pulled = pull(base.home / "snapshots", questionnaire, settings=settings)
    assert pulled.labelled == 10 and pulled.with_audio == 10 and pulled.problems == []
    assert pulled.run_id is not None  # logged to MLflow as a dataset
    got = {c.call_id: c for c in read_labelled_calls(pulled.snapshot / "calls.jsonl")}
    for call_id, truth in gold.items():
        assert got[call_id].json_line() == truth.call.json_line()
        regions = read_rttm(pulled.snapshot / "diarization" / f"{call_id}.rttm")[call_id]
        want = sorted(truth.segments, key=lambda s: (s.start, s.speaker))
        assert len(regions) == len(want)
        for a, b in zip(regions, want, strict=True):
            assert a.speaker == b.speaker and abs(a.start - b.start) < 1e-3 and abs(a.end - b.end) < 1e-3
        assert (pulled.snapshot / "diarization" / f"{call_id}.wav").is_file()
    # the same annotations give the same snapshot
    assert pull(base.home / "snapshots", questionnaire, settings=settings, log_to_mlflow=False).snapshot == (
        pulled.snapshot
    )
    manifest = json.loads((pulled.snapshot / "manifest.json").read_text())
    assert manifest["changed_by_annotators"]["tasks"] == 10


def test_agreement_is_reported_for_tasks_with_several_annotations(studio_home, questionnaire, tmp_path) -> None:
    base, _ = studio_home
    settings = _settings(base, "agreement")
    calls = generate_calls(4, seed=3)
    path = write_labelled_calls(tmp_path / "calls.jsonl", calls)
    push([path], questionnaire, settings=settings, show_progress=False)
    annotate(read_gold([path], questionnaire), questionnaire, settings=settings, per_task=2, noise=0.5, seed=1)
    report = pull(tmp_path / "snap", questionnaire, settings=settings, log_to_mlflow=False)
    assert report.agreement_tasks == 4
    assert 0.0 < report.agreement["overall"] < 1.0


def test_the_config_follows_the_questionnaire_in_place(studio_home, questionnaire: Questionnaire) -> None:
    base, _ = studio_home
    settings = _settings(base, "config")
    studio = Studio(settings)
    first, action = studio.ensure_project(questionnaire)
    assert action == "created"
    data = questionnaire.model_dump()
    data["questions"].append({"id": "delivery_terms", "text": "Какие условия доставки вам нужны?"})
    changed = Questionnaire.model_validate(data)
    updated, action = studio.ensure_project(changed)
    assert action == "updated" and updated.id == first.id and "delivery_terms" in updated.label_config
    assert studio.ensure_project(changed)[1] == "unchanged"


def test_bad_input_gets_clear_errors(studio_home, questionnaire: Questionnaire, tmp_path) -> None:
    base, _ = studio_home
    with pytest.raises(NotFound, match="no Label Studio project 'nope'"):
        pull(tmp_path, questionnaire, settings=base, project="nope")
    wrong = _settings(base, "x", api_key="0" * 40)
    with pytest.raises(AuthFailed, match="refused the API key"):
        Studio(wrong).check()
    down = _settings(base, "x", url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceUnavailable, match="does not answer"):
        push([tmp_path], questionnaire, settings=down)
    data = questionnaire.model_dump()
    data["questions"][0]["id"] = "no_next_step"
    with pytest.raises(ConfigError, match="clash"):
        Studio(base).ensure_project(Questionnaire.model_validate(data))


def test_annotations_trigger_training_and_the_gate(
    studio_home, questionnaire, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Label Studio posts annotation events → after 3 the receiver pulls, trains and gates (subprocesses)."""
    import uvicorn

    from labeling.webhook import create_app, register_webhook

    base, _ = studio_home
    home = tmp_path / "home"
    held_out = write_labelled_calls(tmp_path / "held_out.jsonl", generate_calls(6, seed=21))
    env = {
        "CALLQA_HOME": str(home),
        "CALLQA_LABELSTUDIO__URL": base.labelstudio.url,
        "CALLQA_LABELSTUDIO__PROJECT_PREFIX": "webhook",
        "CALLQA_LABELSTUDIO__RETRAIN_AFTER": "3",
        "CALLQA_LABELSTUDIO__RETRAIN_TASKS": '["calltype"]',
        "CALLQA_LABELSTUDIO__TRAIN_ARGS": json.dumps({"calltype": "--synthetic 40 --epochs 1 --max-steps 3"}),
        "CALLQA_LABELSTUDIO__HELD_OUT": str(held_out),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the job's subprocesses read the same settings
    get_settings.cache_clear()
    settings = get_settings()
    calls = generate_calls(5, seed=5)
    path = write_labelled_calls(tmp_path / "calls.jsonl", calls)
    push([path], questionnaire, settings=settings, show_progress=False)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.1)
        hook = register_webhook(f"http://127.0.0.1:{port}/labelstudio/webhook", questionnaire.name, settings)
        assert hook["created"] and not register_webhook(hook["url"], questionnaire.name, settings)["created"]
        annotate(read_gold([path], questionnaire), questionnaire, settings=settings, limit=3)
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            status = httpx.get(f"http://127.0.0.1:{port}/labelstudio/status").json()
            if status["jobs"] and status["jobs"][0]["status"] in ("done", "failed"):
                break
            time.sleep(2)
        job = status["jobs"][0]
        log = (home / "labelling" / "jobs" / "1" / "job.log").read_text()
        assert job["status"] == "done", log[-3000:]
        assert job["annotations"] == 3
        outcome = job["outcome"]["tasks"]["calltype"]
        assert outcome["train_exit"] == 0 and outcome["trained"]["version"] == "1", log[-3000:]
        assert outcome["gate_exit"] == 0 and "promoted" in outcome["gate"], log[-3000:]
    finally:
        server.should_exit = True
        thread.join(10)
        get_settings.cache_clear()


def test_audio_in_s3_reaches_label_studio_through_its_s3_storage(
    studio_home, spoken_calls: Path, questionnaire, s3_endpoint: str
) -> None:
    base, server = studio_home
    settings = _settings(base, "s3").model_copy(
        update={
            "store": "s3://callqa-audio/calls",
            "s3_endpoint": s3_endpoint,
            "s3_access_key": "testing",
            "s3_secret_key": "testing",
        }
    )
    wav = sorted(spoken_calls.glob("*.wav"))[0]
    report = push([wav], questionnaire, settings=settings, show_progress=False)
    assert len(report.created) == 1
    studio = Studio(settings)
    project = studio.project(project_title(questionnaire.name, settings))
    task = next(iter(studio.tasks(project.id)))
    assert task.data["audio"] == f"s3://callqa-audio/calls/labelstudio/audio/{wav.name}"
    # the browser gets a Label Studio link that redirects to a URL signed for the S3 server
    shown = next(iter(studio.sdk.tasks.list(project=project.id, resolve_uri=True)))
    assert shown.data["audio"].startswith(f"/tasks/{task.id}/resolve/?fileuri=")
    headers = {"Authorization": f"Token {settings.labelstudio.api_key}"}
    r = httpx.get(server.url + shown.data["audio"], headers=headers, follow_redirects=True)
    assert r.status_code == 200 and r.content == wav.read_bytes()
