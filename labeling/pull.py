"""``callqa label pull``: finished annotations → a versioned labelled-call snapshot for training.

The snapshot lives in ``OUT/<hash>/`` where the hash covers every call's labels and speaker
regions, so pulling the same annotations twice gives the same directory:

* ``calls.jsonl`` — labelled calls in the DESIGN.md §4 format (``callqa train --data``);
* ``diarization/<call>.wav`` + ``<call>.rttm`` — speaker regions of the calls with audio
  (``callqa train diarizer --data``);
* ``manifest.json`` — counts, inter-annotator agreement, how often annotators changed the
  model's prediction per question, and conversion problems.

``OUT/LATEST`` names the newest snapshot. Each pull is an MLflow run in the ``callqa-labelling``
experiment with the snapshot as a dataset input and the manifest's numbers as metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from callqa import registry
from callqa.dataset import dataset_hash, write_labelled_calls
from callqa.errors import BadInput
from callqa.schemas import GoldAnswer, LabelledCall, Questionnaire
from callqa.settings import Settings, get_settings
from callqa.speech.segments import SpeakerSegment, write_rttm
from callqa.storage import open_store
from callqa.text.tokens import token_f1
from labeling.client import Studio, project_title
from labeling.client import field_of as _get
from labeling.convert import Conversion, results_to_labels

log = logging.getLogger(__name__)
BOUNDARY_TOLERANCE = 0.25  # seconds a speaker boundary may move and still count as unchanged


def _same_answer(a: GoldAnswer | None, b: GoldAnswer | None) -> bool:
    """Both empty, or the same turn with overlapping words (the answer-F1 match rule)."""
    if a is None or b is None:
        return a is None and b is None
    return a.turn == b.turn and (token_f1(a.text, b.text) >= 0.5 or (a.value is not None and a.value == b.value))


def _same_regions(a: list[SpeakerSegment], b: list[SpeakerSegment]) -> bool:
    if len(a) != len(b):
        return False
    return all(
        x.speaker == y.speaker
        and abs(x.start - y.start) <= BOUNDARY_TOLERANCE
        and abs(x.end - y.end) <= BOUNDARY_TOLERANCE
        for x, y in zip(a, b, strict=True)
    )


def field_matches(
    a: Conversion, b: Conversion, question_ids: list[str], fields: set[str] | None = None
) -> dict[str, bool]:
    """Per labelled field: do two label sets agree? ``fields`` limits the non-answer fields compared."""
    out = {f"answer:{q}": _same_answer(a.call.answers.get(q), b.call.answers.get(q)) for q in question_ids}
    fields = {"errors", "call_type", "speakers"} if fields is None else fields
    if "errors" in fields:
        out["errors"] = set(a.call.errors) == set(b.call.errors)
    if "call_type" in fields:
        out["call_type"] = a.call.call_type == b.call.call_type
    if "speakers" in fields and (a.segments or b.segments):
        out["speakers"] = _same_regions(a.segments, b.segments)
    return out


def predicted_fields(results: list[dict[str, Any]]) -> set[str]:
    """The non-answer fields a prediction has an opinion on (errors, call type, speakers)."""
    names = {r.get("from_name") for r in results}
    return {f for f, tag in (("errors", "errors"), ("call_type", "call_type"), ("speakers", "speaker")) if tag in names}


@dataclass
class PullReport:
    snapshot: Path
    dataset_hash: str
    tasks: int
    labelled: int
    with_audio: int
    skipped: dict[str, int] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    agreement_tasks: int = 0
    changed: dict[str, float] = field(default_factory=dict)
    compared: int = 0
    problems: list[str] = field(default_factory=list)
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot": str(self.snapshot),
            "dataset_hash": self.dataset_hash,
            "tasks": self.tasks,
            "labelled_calls": self.labelled,
            "calls_with_speaker_regions": self.with_audio,
            "skipped": self.skipped,
            "agreement": {"tasks": self.agreement_tasks, **{k: round(v, 4) for k, v in self.agreement.items()}},
            "changed_by_annotators": {
                "tasks": self.compared,
                **{k: round(v, 4) for k, v in self.changed.items()},
            },
            "problems": self.problems[:50],
            "mlflow_run_id": self.run_id,
        }


def _finished(annotations: list[Any]) -> list[Any]:
    return [a for a in annotations if not _get(a, "was_cancelled", False) and _get(a, "result")]


def _final(done: list[Any]) -> Any | None:
    """The annotation that counts among finished ones: a ground-truth one, else the latest."""
    if not done:
        return None
    truth = [a for a in done if _get(a, "ground_truth", False)]
    pool = truth or done
    return max(pool, key=lambda a: (str(_get(a, "updated_at") or _get(a, "created_at") or ""), _get(a, "id") or 0))


def _snapshot_hash(calls: list[LabelledCall], regions: dict[str, list[SpeakerSegment]]) -> str:
    h = hashlib.sha256(dataset_hash(calls).encode())
    for call_id in sorted(regions):
        for s in regions[call_id]:
            h.update(f"{call_id} {s.start:.3f} {s.end:.3f} {s.speaker}\n".encode())
    return h.hexdigest()[:16]


def pull(
    out: Path,
    questionnaire: Questionnaire,
    *,
    settings: Settings | None = None,
    studio: Studio | None = None,
    project: str | None = None,
    log_to_mlflow: bool = True,
) -> PullReport:
    """Export the project's finished annotations into a snapshot (see the module docstring)."""
    settings = settings or get_settings()
    studio = studio or Studio(settings)
    title = project or project_title(questionnaire.name, settings)
    proj = studio.project(title)
    qids = questionnaire.ids

    calls: list[LabelledCall] = []
    regions: dict[str, list[SpeakerSegment]] = {}
    audio_keys: dict[str, str] = {}
    skipped: Counter[str] = Counter()
    problems: list[str] = []
    agree: dict[str, list[bool]] = {}
    agreement_tasks = 0
    changed: dict[str, list[bool]] = {}
    compared = 0
    tasks = 0
    for task in studio.tasks(proj.id):
        tasks += 1
        data = dict(task.data or {})
        done = _finished(list(task.annotations or []))
        final = _final(done)
        if final is None:
            skipped["not annotated"] += 1
            continue
        if data.get("questionnaire") not in (None, questionnaire.name):
            raise BadInput(
                f"task {task.id} was made for questionnaire {data.get('questionnaire')!r}, not {questionnaire.name!r}"
            )
        conv = results_to_labels(data, _get(final, "result"), questionnaire)
        call_id = conv.call.call_id
        problems.extend(f"{call_id}: {p}" for p in conv.problems)
        calls.append(conv.call)
        if conv.segments:
            regions[call_id] = conv.segments
            if data.get("audio_key"):
                audio_keys[call_id] = str(data["audio_key"])
        if len(done) > 1:
            agreement_tasks += 1
            others = [results_to_labels(data, _get(a, "result"), questionnaire) for a in done]
            for x, y in combinations(others, 2):
                for key, same in field_matches(x, y, qids).items():
                    agree.setdefault(key, []).append(same)
        predictions = list(task.predictions or [])
        if predictions:
            compared += 1
            result = _get(predictions[-1], "result") or []
            predicted = results_to_labels(data, result, questionnaire)
            for key, same in field_matches(predicted, conv, qids, predicted_fields(result)).items():
                changed.setdefault(key, []).append(not same)

    if not calls:
        raise BadInput(f"project {title!r} has no finished annotations yet ({tasks} tasks)")
    digest = _snapshot_hash(calls, regions)
    snap = Path(out) / digest
    write_labelled_calls(snap / "calls.jsonl", calls)
    with_audio = _write_diarization(snap / "diarization", regions, audio_keys, settings, problems)

    def rate(values: dict[str, list[bool]]) -> dict[str, float]:
        out_ = {k: sum(v) / len(v) for k, v in sorted(values.items()) if v}
        if values:
            flat = [x for v in values.values() for x in v]
            out_["overall"] = sum(flat) / len(flat)
        return out_

    report = PullReport(
        snapshot=snap,
        dataset_hash=digest,
        tasks=tasks,
        labelled=len(calls),
        with_audio=with_audio,
        skipped=dict(skipped),
        agreement=rate(agree),
        agreement_tasks=agreement_tasks,
        changed=rate(changed),
        compared=compared,
        problems=problems,
    )
    manifest = {"project": title, "questionnaire": questionnaire.name, **report.as_dict()}
    del manifest["mlflow_run_id"]  # the run holds the manifest, not the other way round
    (snap / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    (Path(out) / "LATEST").write_text(digest + "\n", encoding="utf-8")
    if log_to_mlflow:
        report.run_id = _log(report, calls, title, settings)
    return report


def _write_diarization(
    target: Path,
    regions: dict[str, list[SpeakerSegment]],
    audio_keys: dict[str, str],
    settings: Settings,
    problems: list[str],
) -> int:
    """``<call>.wav`` + ``<call>.rttm`` for the calls whose audio is in our store."""
    store = open_store(settings)
    written = 0
    for call_id, segments in sorted(regions.items()):
        key = audio_keys.get(call_id)
        if key is None or not store.exists(key):
            problems.append(f"{call_id}: speaker regions kept only in calls.jsonl (its audio is not in the store)")
            continue
        target.mkdir(parents=True, exist_ok=True)
        suffix = Path(key).suffix or ".wav"
        (target / f"{call_id}{suffix}").write_bytes(store.get_bytes(key))
        write_rttm(target / f"{call_id}.rttm", call_id, segments)
        written += 1
    return written


def _log(report: PullReport, calls: list[LabelledCall], title: str, settings: Settings) -> str:
    import mlflow

    registry.use(settings)
    experiment_id = registry.experiment("callqa-labelling", settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"pull-{report.dataset_hash}") as run:
        mlflow.log_params(
            {
                "project": title,
                "dataset_hash": report.dataset_hash,
                "labelled_calls": report.labelled,
                "tasks": report.tasks,
            }
        )
        registry.log_calls_dataset(
            calls,
            source=str(report.snapshot / "calls.jsonl"),
            name=f"labelled-{report.dataset_hash}",
            context="labelled",
        )
        metrics = {f"agreement.{k.replace(':', '.')}": v for k, v in report.agreement.items()}
        metrics |= {f"changed.{k.replace(':', '.')}": v for k, v in report.changed.items()}
        metrics |= {"labelled_calls": report.labelled, "calls_with_speaker_regions": report.with_audio}
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(report.snapshot / "manifest.json"))
        mlflow.log_artifact(str(report.snapshot / "calls.jsonl"))
        return run.info.run_id
