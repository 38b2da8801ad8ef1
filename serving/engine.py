"""The models behind the API, loaded from the registry and swapped when an alias moves.

One ``Engine`` holds what a stage needs: the speech pipeline, the answer extractor of each
questionnaire, the error and call-type classifiers. The local server uses one engine for all
stages; each Ray Serve deployment builds its own and uses only its part. Model references are
resolved to concrete registry versions; ``refresh`` asks the registry again and, when an alias
moved, loads the new versions beside the old ones and swaps them in one assignment, so requests
in flight finish on the old models and none waits for a load.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from callqa import registry
from callqa.errors import CallQAError
from callqa.models import CHAMPION, ZERO_SHOT, load_answer_extractor, load_classifier
from callqa.pipeline import CallAnalyzer, call_result
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
from callqa.settings import Settings
from callqa.text.lexicon import load_lexicon
from callqa.understanding.answers import AnswerExtractor, ZeroShotAnswerExtractor
from callqa.understanding.document import CallDocument
from callqa.understanding.metrics import text_metrics

log = logging.getLogger(__name__)
TEXT_TASKS = ("answers", "errors", "calltype")


@dataclass
class AudioMeta:
    """What a client may say about a recording besides its bytes."""

    call_id: str
    manager_id: str | None = None
    started_at: datetime | None = None
    agent_channel: int | None = None


@dataclass
class Insights:
    """The coaching side of a call: metrics, manager errors, call type."""

    metrics: CallMetrics
    errors: list[ManagerError] | None
    call_type: CallTypePrediction | None
    models: dict[str, str]


@dataclass
class ModelSet:
    """Concrete model references (``models:/NAME/VERSION``, a directory, ``zero-shot`` or None) and the
    loaded models; per-questionnaire extractors are built on first use."""

    refs: dict[str, str | None]
    names: dict[str, str]
    errors: object | None = None
    call_type: object | None = None
    extractors: dict[str, AnswerExtractor] = field(default_factory=dict)


def questionnaire_key(questionnaire: Questionnaire) -> str:
    return hashlib.sha1(questionnaire.model_dump_json().encode()).hexdigest()[:16]


def resolve_ref(spec: str, task: str, settings: Settings) -> str | None:
    """``champion`` and aliases → ``models:/NAME/VERSION``; before the first promotion, zero-shot
    answers and no classifier."""
    if spec == CHAMPION:
        version = registry.champion(task, settings)
        if version is None:
            return ZERO_SHOT if task == "answers" else None
        return f"models:/{version.name}/{version.version}"
    if spec.startswith("models:/") and "@" in spec:
        version = registry.resolve(spec, settings)
        return f"models:/{version.name}/{version.version}"
    if spec == ZERO_SHOT and task != "answers":
        return None
    return spec


def display_name(ref: str | None) -> str:
    if ref is None:
        return "none"
    return ref.removeprefix("models:/")


def assemble(
    call: Call,
    questionnaire: Questionnaire,
    answers: list[Answer],
    answer_model: str,
    insights: Insights,
    audio: AudioInfo | None = None,
) -> CallResult:
    """One ``CallResult`` from the stages' outputs (the same shape the in-process pipeline returns)."""
    return call_result(
        call,
        questionnaire,
        answers,
        insights.metrics,
        answer_model=answer_model,
        errors=insights.errors,
        call_type=insights.call_type,
        models={"answers": answer_model, **insights.models},
        audio=audio,
    )


class Engine:
    """Models for the serving stages; thread-safe for concurrent requests."""

    def __init__(
        self,
        settings: Settings,
        default: Questionnaire,
        refs: dict[str, str] | None = None,
        tasks: Sequence[str] = TEXT_TASKS,
    ) -> None:
        self.settings = settings
        self.default = default
        self.tasks = tuple(tasks)  # the text tasks this engine serves (a Ray Serve stage runs some of them)
        cfg = settings.serving
        self.specs = refs or {"answers": cfg.answers_model, "errors": cfg.errors_model, "calltype": cfg.calltype_model}
        self.lexicon = load_lexicon(settings.lexicon)
        self._lock = threading.Lock()
        self._zero_shot: dict[str, ZeroShotAnswerExtractor] = {}
        self._models: ModelSet | None = None
        self._speech: CallAnalyzer | None = None

    # --- models -------------------------------------------------------------------------------
    def load(self) -> ModelSet:
        """Resolve the references and load this engine's models (the default questionnaire's extractor too)."""
        import torch

        torch.set_num_threads(self.settings.serving.torch_threads)
        refs = self._resolve()
        models = ModelSet(refs=refs, names={task: display_name(refs[task]) for task in self.tasks})
        if refs["errors"] is not None:
            models.errors = load_classifier(refs["errors"], "errors", self.settings)
        if refs["calltype"] is not None:
            models.call_type = load_classifier(refs["calltype"], "calltype", self.settings)
        if "answers" in self.tasks:
            self._extractor(models, self.default)
        self._models = models
        log.info("models loaded", extra={"models": models.names})
        return models

    def refresh(self) -> bool:
        """Load new versions when an alias moved; True when the models changed."""
        current = self.models
        refs = self._resolve()
        if refs == current.refs:
            return False
        log.info("an alias moved; loading", extra={"old": current.refs, "new": refs})
        self.load()
        return True

    def _resolve(self) -> dict[str, str | None]:
        """Each text task's model reference now (None for a task this engine does not serve)."""
        return {
            task: resolve_ref(self.specs[task], task, self.settings) if task in self.tasks else None
            for task in TEXT_TASKS
        }

    def reconfigure(self, refs: dict[str, str]) -> None:
        """New model references (Ray Serve ``user_config``); loads when they resolve differently."""
        self.specs = {**self.specs, **{k: v for k, v in refs.items() if k in TEXT_TASKS}}
        if self._models is None:
            self.load()
        else:
            self.refresh()

    @property
    def models(self) -> ModelSet:
        if self._models is None:
            with self._lock:
                if self._models is None:
                    self.load()
        assert self._models is not None
        return self._models

    def model_names(self) -> dict[str, str]:
        return dict(self.models.names)

    def _zero(self, questionnaire: Questionnaire) -> ZeroShotAnswerExtractor:
        """The rules alone, for the call metrics' topics (the zero-shot answer model is loaded like any other)."""
        key = questionnaire_key(questionnaire)
        if key not in self._zero_shot:
            self._zero_shot[key] = ZeroShotAnswerExtractor(questionnaire, lexicon=self.lexicon)
        return self._zero_shot[key]

    def _extractor(self, models: ModelSet, questionnaire: Questionnaire) -> AnswerExtractor:
        key = questionnaire_key(questionnaire)
        found = models.extractors.get(key)
        if found is not None:
            return found
        ref = models.refs["answers"] or ZERO_SHOT
        extractor: AnswerExtractor = load_answer_extractor(ref, questionnaire, self.settings)
        if ref != ZERO_SHOT and self.settings.triton_url:
            from serving.triton.client import triton_answer_extractor

            extractor = triton_answer_extractor(extractor, self.settings.triton_url)
        models.extractors[key] = extractor
        return extractor

    # --- stages -------------------------------------------------------------------------------
    def document(self, call: Call) -> CallDocument:
        return CallDocument.build(call, self.lexicon)

    def answers(
        self, calls: list[Call], questionnaire: Questionnaire, documents: list[CallDocument] | None = None
    ) -> tuple[list[list[Answer]], str]:
        """Answers of several calls with one questionnaire (one batched forward where the model can)."""
        models = self.models
        extractor = self._extractor(models, questionnaire)
        documents = documents or [self.document(c) for c in calls]
        many = getattr(extractor, "extract_many", None)
        if many is not None and len(calls) > 1:
            found = many(calls, documents)
        else:
            found = [extractor.extract(c, d) for c, d in zip(calls, documents, strict=True)]
        return found, models.names["answers"]

    @staticmethod
    def encodings_of(documents: Sequence[CallDocument]) -> list[dict[str, object]]:
        """Each document's encoder states (by encoder name): what the answers stage hands to the insights
        stage, so a call goes through the encoder once even when the stages run apart."""
        from callqa.encoder.runtime import CallEncoding

        return [{k: v for k, v in d.encodings.items() if isinstance(v, CallEncoding)} for d in documents]

    def insights(
        self,
        call: Call,
        questionnaire: Questionnaire,
        document: CallDocument | None = None,
        encodings: dict[str, object] | None = None,
    ) -> Insights:
        models = self.models
        doc = document or self.document(call)
        doc.encodings.update(encodings or {})
        zero = self._zero(questionnaire)
        metrics = text_metrics(doc, self.lexicon, zero.topics_asked(doc), zero.question_ids)
        errors = models.errors.errors(doc, metrics) if models.errors is not None else None
        call_type = models.call_type.call_type(doc, metrics) if models.call_type is not None else None
        names = {t: models.names[t] for t in ("errors", "calltype") if models.refs[t] is not None}
        return Insights(metrics=metrics, errors=errors, call_type=call_type, models=names)

    def transcript(self, call: Call, questionnaire: Questionnaire) -> CallResult:
        """The whole text analysis of one call in this process."""
        doc = self.document(call)
        (answers,), name = self.answers([call], questionnaire, [doc])
        return assemble(call, questionnaire, answers, name, self.insights(call, questionnaire, doc))

    # --- speech -------------------------------------------------------------------------------
    @property
    def speech(self) -> CallAnalyzer:
        if self._speech is None:
            with self._lock:
                if self._speech is None:
                    analyzer = CallAnalyzer(self.default, self.settings)
                    _ = analyzer.speech.transcriber  # built now, not in the middle of a request
                    try:
                        _ = analyzer.speech.diarizer
                    except CallQAError as exc:  # stereo calls with a channel map need no diarizer
                        log.warning("no diarizer (%s): mono recordings will fail until its model is built", exc)
                    self._speech = analyzer
        return self._speech

    def transcribe(self, audio: bytes, meta: AudioMeta) -> tuple[Call, AudioInfo]:
        """Speech stages: recording → timed transcript."""
        call, info, _ = self.speech.transcribe(
            audio,
            call_id=meta.call_id,
            started_at=meta.started_at,
            manager_id=meta.manager_id,
            agent_channel=meta.agent_channel,
        )
        return call, info

    def audio(self, audio: bytes, meta: AudioMeta, questionnaire: Questionnaire) -> CallResult:
        call, info = self.transcribe(audio, meta)
        result = self.transcript(call, questionnaire)
        result.audio = info
        return result
