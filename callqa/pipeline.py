"""The analysis pipeline: a list of stages, each enriching one call's analysis in turn."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from callqa.dataset import read_calls
from callqa.schemas import (
    Answer,
    AudioInfo,
    Call,
    CallMetrics,
    CallResult,
    CallTypePrediction,
    ManagerError,
    Questionnaire,
)
from callqa.settings import Settings, get_settings
from callqa.text.lexicon import Lexicon, load_lexicon
from callqa.understanding.answers import AnswerExtractor, ZeroShotAnswerExtractor
from callqa.understanding.document import CallDocument
from callqa.understanding.metrics import text_metrics

if TYPE_CHECKING:  # torch loads only when a trained classifier is used
    from callqa.understanding.classifiers import TurnClassifier

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    """One call on its way through the pipeline."""

    call: Call
    questionnaire: Questionnaire
    document: CallDocument | None = None
    answers: list[Answer] = field(default_factory=list)
    metrics: CallMetrics | None = None
    errors: list[ManagerError] | None = None
    call_type: CallTypePrediction | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Stage(Protocol):
    name: str

    def __call__(self, analysis: Analysis) -> Analysis: ...


class PrepareText:
    """Tokenise, split into clauses, tag money and dates: the shared ground of text stages."""

    name = "prepare"

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon

    def __call__(self, analysis: Analysis) -> Analysis:
        analysis.document = CallDocument.build(analysis.call, self.lexicon)
        return analysis


class ExtractAnswers:
    """Answers to the questionnaire."""

    name = "answers"

    def __init__(self, extractor: AnswerExtractor) -> None:
        self.extractor = extractor

    def __call__(self, analysis: Analysis) -> Analysis:
        analysis.answers = self.extractor.extract(analysis.call, analysis.document)
        return analysis


class MeasureText:
    """Talk share, questions, filler and value-reducing words, topics covered."""

    name = "metrics"

    def __init__(self, lexicon: Lexicon, topics: ZeroShotAnswerExtractor) -> None:
        self.lexicon = lexicon
        self.topics = topics

    def __call__(self, analysis: Analysis) -> Analysis:
        doc = analysis.document or CallDocument.build(analysis.call, self.lexicon)
        analysis.metrics = text_metrics(doc, self.lexicon, self.topics.topics_asked(doc), self.topics.question_ids)
        return analysis


class ClassifyCall:
    """Manager errors (with quotes) and the call type, from the text and the call metrics."""

    name = "classify"

    def __init__(self, errors: TurnClassifier | None, call_type: TurnClassifier | None) -> None:
        self.errors = errors
        self.call_type = call_type

    def __call__(self, analysis: Analysis) -> Analysis:
        assert analysis.document is not None and analysis.metrics is not None, "classify runs after metrics"
        if self.errors is not None:
            analysis.errors = self.errors.errors(analysis.document, analysis.metrics)
        if self.call_type is not None:
            analysis.call_type = self.call_type.call_type(analysis.document, analysis.metrics)
        return analysis


def call_result(
    call: Call,
    questionnaire: Questionnaire,
    answers: list[Answer],
    metrics: CallMetrics,
    *,
    answer_model: str,
    errors: list[ManagerError] | None = None,
    call_type: CallTypePrediction | None = None,
    models: dict[str, str] | None = None,
    audio: AudioInfo | None = None,
) -> CallResult:
    """The ``CallResult`` of a call from what the stages found (in one process or across deployments)."""
    return CallResult(
        call_id=call.call_id,
        started_at=call.started_at,
        manager_id=call.manager_id,
        questionnaire=questionnaire.name,
        turns=call.turns,
        answers=answers,
        metrics=metrics,
        model=answer_model,
        errors=errors,
        call_type=call_type,
        models=models or {"answers": answer_model},
        audio=audio,
    )


class Pipeline:
    """Stages run in order on each call; the result is a ``CallResult``."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        stages: Sequence[Stage],
        model_name: str,
        models: dict[str, str] | None = None,
    ) -> None:
        self.questionnaire = questionnaire
        self.stages = list(stages)
        self.model_name = model_name
        self.models = models or {"answers": model_name}

    def analyze(self, call: Call) -> CallResult:
        """Run every stage on one call."""
        analysis = Analysis(call=call, questionnaire=self.questionnaire)
        for stage in self.stages:
            started = time.perf_counter()
            analysis = stage(analysis)
            analysis.timings[stage.name] = time.perf_counter() - started
        log.debug("analysed call", extra={"call_id": call.call_id, "timings": analysis.timings})
        assert analysis.metrics is not None, "the pipeline has no metrics stage"
        return call_result(
            call,
            self.questionnaire,
            analysis.answers,
            analysis.metrics,
            answer_model=self.model_name,
            errors=analysis.errors,
            call_type=analysis.call_type,
            models=self.models,
        )

    def analyze_many(self, calls: Iterable[Call]) -> Iterator[CallResult]:
        for call in calls:
            yield self.analyze(call)


def build_text_pipeline(
    questionnaire: Questionnaire,
    extractor: AnswerExtractor | None = None,
    settings: Settings | None = None,
    errors: TurnClassifier | None = None,
    call_type: TurnClassifier | None = None,
) -> Pipeline:
    """Transcript in, answers and metrics out (errors and call type when those models are given);
    the zero-shot extractor (rules and the pretrained encoder) unless one is given."""
    settings = settings or get_settings()
    lexicon = load_lexicon(settings.lexicon)
    zero_shot = ZeroShotAnswerExtractor(questionnaire, lexicon=lexicon)  # the call metrics' topics: rules only
    if extractor is None:
        from callqa.models import ZERO_SHOT, load_answer_extractor

        extractor = load_answer_extractor(ZERO_SHOT, questionnaire, settings)
    stages: list[Stage] = [PrepareText(lexicon), ExtractAnswers(extractor), MeasureText(lexicon, zero_shot)]
    models = {"answers": extractor.name}
    if errors is not None or call_type is not None:
        stages.append(ClassifyCall(errors, call_type))
        models |= {k: m.name for k, m in (("errors", errors), ("calltype", call_type)) if m is not None}
    return Pipeline(questionnaire, stages, model_name=extractor.name, models=models)


def analyze_file(path: str | Path, questionnaire: Questionnaire) -> list[CallResult]:
    """Analyse every call in a transcript file (JSON call, JSON list of calls, or JSONL)."""
    calls = read_calls(path)
    pipeline = build_text_pipeline(questionnaire)
    return list(pipeline.analyze_many(calls))


AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".opus", ".oga", ".flac"})


class CallAnalyzer:
    """Transcripts and recordings in, ``CallResult``s out; speech models load on the first recording."""

    def __init__(
        self, questionnaire: Questionnaire, settings: Settings | None = None, text: Pipeline | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.questionnaire = questionnaire
        self.text = text or build_text_pipeline(questionnaire, settings=self.settings)
        self._speech = None

    @property
    def speech(self):
        if self._speech is None:
            from callqa.speech.pipeline import build_speech_pipeline

            zero_shot = next(s for s in self.text.stages if isinstance(s, MeasureText)).topics
            self._speech = build_speech_pipeline(self.settings, asking_score=zero_shot.asking_score)
        return self._speech

    def transcript(self, call: Call) -> CallResult:
        return self.text.analyze(call)

    def audio(
        self,
        source: str | Path | bytes,
        *,
        call_id: str | None = None,
        started_at: datetime | None = None,
        manager_id: str | None = None,
        agent_channel: int | None = None,
    ) -> CallResult:
        """Analyse a recording: speech stages, then the text stages on the timed transcript."""
        return self.audio_detailed(
            source, call_id=call_id, started_at=started_at, manager_id=manager_id, agent_channel=agent_channel
        )[0]

    def audio_detailed(
        self,
        source: str | Path | bytes,
        *,
        call_id: str | None = None,
        started_at: datetime | None = None,
        manager_id: str | None = None,
        agent_channel: int | None = None,
    ):
        """``audio`` plus the speech stages' own output (diarization segments), for evaluation."""
        call, info, speech = self.transcribe(
            source, call_id=call_id, started_at=started_at, manager_id=manager_id, agent_channel=agent_channel
        )
        result = self.text.analyze(call)
        result.audio = info
        return result, speech

    def transcribe(
        self,
        source: str | Path | bytes,
        *,
        call_id: str | None = None,
        started_at: datetime | None = None,
        manager_id: str | None = None,
        agent_channel: int | None = None,
    ):
        """The speech stages alone: the timed transcript, what was done to get it, and their raw output."""
        from callqa.speech.audio import load_audio

        sp = self.settings.speech
        name = None if isinstance(source, bytes) else str(source)
        audio = load_audio(source, max_seconds=sp.max_audio_seconds, silence_dbfs=sp.silence_dbfs, name=name)
        call_id = call_id or (Path(source).stem if name else "call")
        speech = self.speech.run(
            audio, call_id=call_id, started_at=started_at, manager_id=manager_id, agent_channel=agent_channel
        )
        info = AudioInfo(
            duration=round(audio.duration, 3),
            channels=audio.channels,
            source_rate=audio.source_rate,
            source_format=audio.source_format,
            separate_channels=speech.separate_channels,
            diarizer=None if speech.separate_channels else self.speech.diarizer.name,
            asr=self.speech.transcriber.name,
            roles_method=speech.roles.method,
            roles_score=speech.roles.score,
            stage_seconds={k: round(v, 3) for k, v in speech.timings.items()},
        )
        return speech.call, info, speech
