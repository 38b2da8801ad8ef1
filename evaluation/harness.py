"""Score an answer model on labelled calls: metrics as DESIGN.md §4 defines them, with timing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from callqa.dataset import dataset_hash
from callqa.pipeline import build_text_pipeline
from callqa.progress import progress
from callqa.schemas import CallResult, ErrorId, LabelledCall, Questionnaire
from callqa.understanding.answers import AnswerExtractor
from evaluation.metrics import (
    AnswerMetrics,
    AnswerScorer,
    ClassificationScorer,
    Classified,
    LabelMetrics,
    Outcome,
)
from evaluation.splits import half_of

if TYPE_CHECKING:
    from callqa.understanding.classifiers import TurnClassifier


class EvaluationSummary(AnswerMetrics):
    """The metrics plus what was evaluated, on what, and how fast."""

    model: str
    questionnaire: str
    data: list[str]
    dataset_hash: str
    seconds_per_call: float
    halves: dict[str, AnswerMetrics] | None = None
    error_model: str | None = None
    calltype_model: str | None = None
    error_macro_f1: float | None = None
    per_error: dict[str, LabelMetrics] | None = None
    call_type_accuracy: float | None = None


@dataclass
class Evaluation:
    summary: EvaluationSummary
    outcomes: list[Outcome]
    results: list[CallResult]
    classified: list[Classified] = field(default_factory=list)  # per call, for paired comparisons


def evaluate_answers(
    calls: Sequence[LabelledCall],
    questionnaire: Questionnaire,
    extractor: AnswerExtractor,
    data: Sequence[str | Path] = (),
    halves: bool = False,
    show_progress: bool = True,
    errors: TurnClassifier | None = None,
    call_type: TurnClassifier | None = None,
) -> Evaluation:
    """Run the extractor over labelled calls and score its answers.

    ``halves`` also scores the two deterministic halves of the calls (by call id), the
    tuning half and the held-out half of the development protocol.
    """
    pipeline = build_text_pipeline(questionnaire, extractor, errors=errors, call_type=call_type)
    scorer = AnswerScorer(questionnaire)
    classes = ClassificationScorer(e.value for e in ErrorId)
    by_half = [AnswerScorer(questionnaire), AnswerScorer(questionnaire)]
    results = []
    started = time.perf_counter()
    with progress(show_progress) as bar:
        task = bar.add_task(f"evaluating {extractor.name}", total=len(calls))
        for call in calls:
            result = pipeline.analyze(call.to_call())
            results.append(result)
            scorer.add(call, result.answers)
            classes.add(
                call,
                None if result.errors is None else [e.error.value for e in result.errors],
                result.call_type.call_type.value if result.call_type else None,
            )
            if halves:
                by_half[half_of(call.call_id)].add(call, result.answers)
            bar.advance(task)
    elapsed = time.perf_counter() - started
    metrics = scorer.result()
    summary = EvaluationSummary(
        **metrics.model_dump(),
        model=extractor.name,
        questionnaire=questionnaire.name,
        data=[str(p) for p in data],
        dataset_hash=dataset_hash(calls),
        seconds_per_call=elapsed / max(1, len(calls)),
        halves={"tune": by_half[0].result(), "held_out": by_half[1].result()} if halves else None,
        error_model=errors.name if errors else None,
        calltype_model=call_type.name if call_type else None,
        **classes.result().model_dump(exclude={"call_type_n"}),
    )
    return Evaluation(summary=summary, outcomes=scorer.outcomes, results=results, classified=classes.calls)
