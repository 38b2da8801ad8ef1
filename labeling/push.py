"""``callqa label push``: calls out to Label Studio with the champion models' predictions, least sure first.

Inputs: transcript files (JSON/JSONL), recordings, or directories of recordings. A recording
with a ``<stem>.json`` beside it (a transcript, or a synthetic call's reference) uses that
transcript; a bare recording goes through the speech pipeline first. Audio is uploaded to the
object store so Label Studio can play it (local store: Label Studio's local-files serving;
S3/MinIO: an S3 storage connection that resolves ``s3://`` URLs).

Each task gets a prediction per model version (``model_version`` = the registry version). The
calls the models are least sure of go first: ``score`` = the lowest answer confidence of the
call times the share of questions where the champion and the zero-shot extractor agree; the
project samples by that score (Label Studio's uncertainty sampling). Pushing a call again never
duplicates its task: it only adds a prediction when the model version changed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from callqa.dataset import read_calls
from callqa.errors import BadInput
from callqa.pipeline import AUDIO_SUFFIXES, CallAnalyzer, Pipeline, build_text_pipeline
from callqa.progress import progress
from callqa.schemas import Call, CallResult, LabelledCall, Questionnaire
from callqa.settings import Settings, get_settings
from callqa.speech.segments import SpeakerSegment
from callqa.storage import LocalStore, open_store
from callqa.yamlio import describe_validation_error
from labeling.client import Studio, field_of
from labeling.convert import prediction_results, task_data

log = logging.getLogger(__name__)
AUDIO_PREFIX = "labelstudio/audio"


@dataclass
class Source:
    """One call to push: its transcript and, when there is one, its recording."""

    call: Call
    audio: Path | None = None
    duration: float | None = None


@dataclass
class Scored:
    source: Source
    result: CallResult
    score: float
    disagreements: int


@dataclass
class PushReport:
    project_id: int
    project_title: str
    config: str
    model_version: str
    created: list[str] = field(default_factory=list)
    repredicted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    order: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "project": self.project_title,
            "config": self.config,
            "model_version": self.model_version,
            "created": len(self.created),
            "new_predictions": len(self.repredicted),
            "unchanged": len(self.unchanged),
            "order": self.order,
        }


def _timed_call(path: Path) -> Call | None:
    """The transcript beside a recording: a Call/labelled-call JSON or a synthetic reference."""
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return None
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{meta_path}: not valid JSON: {exc}") from exc
    record = data.get("call", data) if isinstance(data, dict) else None
    if not isinstance(record, dict):
        raise BadInput(f"{meta_path}: expected a call object")
    try:
        return LabelledCall.model_validate(record).to_call()
    except ValidationError as exc:
        raise BadInput(f"{meta_path}: {describe_validation_error(exc)}") from exc


def collect(paths: list[Path], analyzer_factory) -> list[Source]:
    """Sources from files and directories (see the module docstring)."""
    sources: list[Source] = []
    for path in paths:
        if path.is_dir():
            recordings = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not recordings:
                raise BadInput(f"{path}: no recordings ({', '.join(sorted(AUDIO_SUFFIXES))}) in the directory")
            files = recordings
        elif path.is_file():
            files = [path]
        else:
            raise BadInput(f"{path}: no such file or directory")
        for file in files:
            if file.suffix.lower() in AUDIO_SUFFIXES:
                sources.append(_recording(file, analyzer_factory))
            else:
                sources.extend(Source(call) for call in read_calls(file))
    ids = [s.call.call_id for s in sources]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BadInput(f"call ids must be unique across the inputs: {', '.join(dupes[:5])}")
    return sources


def _recording(path: Path, analyzer_factory) -> Source:
    import soundfile as sf

    try:
        duration = float(sf.info(str(path)).duration)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise BadInput(f"{path}: not a readable recording ({exc})") from exc
    call = _timed_call(path)
    if call is None:
        result = analyzer_factory().audio(path, call_id=path.stem)
        call = Call(call_id=result.call_id, turns=result.turns, started_at=result.started_at)
    return Source(call, path, duration)


def turn_segments(call: Call) -> list[SpeakerSegment]:
    """Speaker regions from the transcript's timed turns (the diarizer's output for recordings)."""
    return [
        SpeakerSegment(t.start, t.end, t.speaker.value)
        for t in call.turns
        if t.start is not None and t.end is not None and t.end > t.start
    ]


def _overlaps(a, b) -> bool:
    return a.turn == b.turn and a.char_start < b.char_end and b.char_start < a.char_end


def score_calls(
    sources: list[Source], pipeline: Pipeline, second_opinion: Pipeline | None, *, show_progress: bool = True
) -> list[Scored]:
    """Predictions and an uncertainty score per call (lower = less sure = earlier)."""
    scored: list[Scored] = []
    with progress(show_progress) as bar:
        task = bar.add_task("predicting", total=len(sources))
        for source in sources:
            result = pipeline.analyze(source.call)
            confidence = min((a.confidence for a in result.answers), default=0.5)
            disagreements = 0
            if second_opinion is not None:
                other = second_opinion.analyze(source.call)
                for qid in pipeline.questionnaire.ids:
                    a, b = result.answer_for(qid), other.answer_for(qid)
                    if (a is None) != (b is None) or (a is not None and b is not None and not _overlaps(a, b)):
                        disagreements += 1
            share = disagreements / max(1, len(pipeline.questionnaire.ids))
            scored.append(Scored(source, result, round(confidence * (1.0 - share), 4), disagreements))
            bar.advance(task)
    scored.sort(key=lambda s: (s.score, s.source.call.call_id))
    return scored


def _upload_audio(source: Source, settings: Settings) -> tuple[str, str]:
    """Upload the recording (once); its store key and the URL Label Studio resolves for the player."""
    store = open_store(settings)
    key = f"{AUDIO_PREFIX}/{source.call.call_id}{source.audio.suffix.lower()}"
    if not store.exists(key):
        store.put_file(key, source.audio)
    if isinstance(store, LocalStore):
        return key, f"/data/local-files/?d={key}"
    return key, store.uri(key)


def connect_storage(studio: Studio, project_id: int, settings: Settings) -> None:
    """Let the project read our audio: a local-files storage (local store) or an S3 storage (MinIO)."""
    store = open_store(settings)
    if isinstance(store, LocalStore):
        kind, options = "local", {"path": str((store.root / AUDIO_PREFIX).resolve()), "title": "callqa audio"}
        (store.root / AUDIO_PREFIX).mkdir(parents=True, exist_ok=True)
        same = "path"
    else:
        # Label Studio checks that the prefix holds objects: connect after the first upload
        kind, same = "s3", "bucket"
        options = {
            "bucket": store.bucket,
            "prefix": f"{store.prefix}/{AUDIO_PREFIX}" if store.prefix else AUDIO_PREFIX,
            "aws_access_key_id": settings.s3_access_key,
            "aws_secret_access_key": settings.s3_secret_key,
            "s3endpoint": settings.s3_endpoint,
            "region_name": settings.s3_region,
            "presign": True,
            "title": "callqa audio (S3)",
        }
    client = getattr(studio.sdk.import_storage, kind)
    existing = studio.call("list storages", client.list, project=project_id)
    if any(getattr(s, same) == options[same] for s in existing):
        return
    options = {k: v for k, v in options.items() if v is not None}
    studio.call(f"connect {kind} storage", client.create, project=project_id, use_blob_urls=False, **options)


def existing_tasks(studio: Studio, project_id: int) -> dict[str, Any]:
    """call id → task, for every task already in the project."""
    out: dict[str, Any] = {}
    for task in studio.tasks(project_id):
        call_id = (task.data or {}).get("call_id")
        if call_id:
            out[str(call_id)] = task
    return out


def _latest_version(task: Any) -> str | None:
    predictions = field_of(task, "predictions") or []
    versions = [field_of(p, "model_version") for p in predictions]
    return versions[-1] if versions else None


def push(
    paths: list[Path],
    questionnaire: Questionnaire,
    *,
    limit: int | None = None,
    answers_model: str = "champion",
    settings: Settings | None = None,
    studio: Studio | None = None,
    show_progress: bool = True,
) -> PushReport:
    """Push calls with predictions (see the module docstring)."""
    from callqa.models import ZERO_SHOT, champion_or_none, load_answer_extractor
    from callqa.registry import champion

    settings = settings or get_settings()
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    studio = studio or Studio(settings)
    studio.check()
    project, action = studio.ensure_project(questionnaire)

    if answers_model == "champion" and champion("answers", settings) is None:
        answers_model = ZERO_SHOT  # before the first promotion the zero-shot extractor is the champion
    extractor = load_answer_extractor(answers_model, questionnaire, settings)
    pipeline = build_text_pipeline(
        questionnaire,
        extractor,
        settings,
        errors=champion_or_none("errors", settings),
        call_type=champion_or_none("calltype", settings),
    )
    second = None if extractor.name == ZERO_SHOT else build_text_pipeline(questionnaire, settings=settings)
    model_version = extractor.name

    def analyzer() -> CallAnalyzer:
        return CallAnalyzer(questionnaire, settings, text=pipeline)

    sources = collect(paths, analyzer)
    scored = score_calls(sources, pipeline, second, show_progress=show_progress)
    if limit is not None:
        scored = scored[:limit]

    report = PushReport(project.id, project.title, action, model_version)
    known = existing_tasks(studio, project.id)
    audio = {
        s.source.call.call_id: _upload_audio(s.source, settings)
        for s in scored
        if s.source.call.call_id not in known and s.source.audio is not None
    }
    if audio:
        connect_storage(studio, project.id, settings)
    new_tasks = []
    for s in scored:
        segments = turn_segments(s.source.call)
        prediction = {
            "model_version": model_version,
            "score": s.score,
            "result": prediction_results(s.result, segments, s.source.duration),
        }
        call_id = s.source.call.call_id
        report.order.append({"call_id": call_id, "score": s.score, "disagreements": s.disagreements})
        task = known.get(call_id)
        if task is None:
            labelled = LabelledCall.model_validate(s.source.call.model_dump())
            key, url = audio.get(call_id, (None, None))
            data = task_data(labelled, url, questionnaire) | ({"audio_key": key} if key else {})
            new_tasks.append({"data": data, "predictions": [prediction]})
            report.created.append(call_id)
        elif _latest_version(task) != model_version:
            studio.call("add prediction", studio.sdk.predictions.create, task=task.id, **prediction)
            report.repredicted.append(call_id)
        else:
            report.unchanged.append(call_id)
    if new_tasks:
        studio.call("import tasks", studio.sdk.projects.import_tasks, project.id, request=new_tasks)
    studio.call("set model version", studio.sdk.projects.update, project.id, model_version=model_version)
    return report
