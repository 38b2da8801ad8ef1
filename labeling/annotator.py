"""A simulated annotator: fills Label Studio tasks from gold labels, through the same API people use.

It lets the whole loop run unattended in tests and demos (push → annotate → pull → train →
gate). ``noise`` is the chance that each labelled field is spoiled the way a hurried person
spoils it: an answer dropped or widened to the whole turn, an error missed, a speaker boundary
moved by 0.3-0.6 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callqa.dataset import read_labelled_many
from callqa.errors import BadInput
from callqa.schemas import GoldAnswer, LabelledCall, Questionnaire
from callqa.settings import Settings, get_settings
from callqa.speech.segments import SpeakerSegment, read_rttm
from labeling.client import Studio, project_title
from labeling.convert import call_of_task, labels_to_results


@dataclass
class Gold:
    call: LabelledCall
    segments: list[SpeakerSegment] = field(default_factory=list)
    duration: float | None = None


def read_gold(paths: list[Path], questionnaire: Questionnaire) -> dict[str, Gold]:
    """Gold labels from labelled-call JSONL files and/or directories of synthetic references (+ RTTM)."""
    from callqa.speech.synth import read_reference

    gold: dict[str, Gold] = {}
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            refs = sorted(path.glob("*.json"))
            if not refs:
                raise BadInput(f"{path}: no <call>.json references in the directory")
            for ref in refs:
                call, _, meta = read_reference(ref)
                rttm = ref.with_suffix(".rttm")
                segments = read_rttm(rttm).get(call.call_id, []) if rttm.is_file() else []
                gold[call.call_id] = Gold(call, segments, meta.get("duration"))
        else:
            files.append(path)
    if files:
        for call in read_labelled_many(files, questionnaire):
            gold[call.call_id] = Gold(call)
    return gold


def spoil(gold: Gold, noise: float, rng: random.Random) -> Gold:
    """A copy of ``gold`` with the mistakes a hurried annotator makes (each field with chance ``noise``)."""
    if noise <= 0:
        return gold
    answers: dict[str, GoldAnswer | None] = {}
    for qid, answer in gold.call.answers.items():
        spoilt = answer
        if answer is not None and rng.random() < noise:
            whole = gold.call.turns[answer.turn].text.strip()
            spoilt = None if rng.random() < 0.5 else GoldAnswer(turn=answer.turn, text=whole, value=answer.value)
        answers[qid] = spoilt
    errors = [e for e in gold.call.errors if rng.random() >= noise]
    segments = [
        SpeakerSegment(max(0.0, s.start + rng.choice((-1, 1)) * rng.uniform(0.3, 0.6)), s.end, s.speaker)
        if rng.random() < noise
        else s
        for s in gold.segments
    ]
    segments = [s for s in segments if s.end > s.start]
    call = gold.call.model_copy(update={"answers": answers, "errors": errors})
    return Gold(call, segments, gold.duration)


@dataclass
class AnnotateReport:
    annotated: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"annotated": len(self.annotated), "skipped": self.skipped}


def annotate(
    gold: dict[str, Gold],
    questionnaire: Questionnaire,
    *,
    noise: float = 0.0,
    seed: int = 0,
    per_task: int = 1,
    limit: int | None = None,
    settings: Settings | None = None,
    studio: Studio | None = None,
) -> AnnotateReport:
    """Annotate the project's unannotated tasks from ``gold`` (``per_task`` annotations each)."""
    if not 0.0 <= noise <= 1.0:
        raise BadInput(f"--noise must be within 0..1, got {noise}")
    if per_task < 1:
        raise BadInput(f"--per-task must be at least 1, got {per_task}")
    settings = settings or get_settings()
    studio = studio or Studio(settings)
    project = studio.project(project_title(questionnaire.name, settings))
    rng = random.Random(seed)
    report = AnnotateReport()
    for task in studio.tasks(project.id):
        if limit is not None and len(report.annotated) >= limit:
            break
        data = dict(task.data or {})
        call_id = str(data.get("call_id"))
        if task.annotations:
            report.skipped[call_id] = "already annotated"
            continue
        truth = gold.get(call_id)
        if truth is None:
            report.skipped[call_id] = "no gold labels"
            continue
        shown = call_of_task(data)
        if [t.text for t in shown.turns] != [t.text for t in truth.call.turns]:
            report.skipped[call_id] = "the task's transcript differs from the gold call's"
            continue
        for k in range(per_task):
            labels = spoil(truth, noise, rng) if k or noise else truth
            results = labels_to_results(labels.call, labels.segments, truth.duration)
            studio.call(
                "create annotation",
                studio.sdk.annotations.create,
                task.id,
                result=results,
                lead_time=round(rng.uniform(30, 240), 1),
            )
        report.annotated.append(call_id)
    return report
