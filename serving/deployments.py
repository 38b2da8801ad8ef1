"""The Ray Serve application: one deployment per stage behind the FastAPI ingress.

``api`` (ingress: the same FastAPI app as the local server, its job workers included) composes
``speech`` (recording → timed transcript), ``answers`` (question-conditioned extraction, batched
across calls with ``@serve.batch``) and ``insights`` (call metrics, manager errors, call type,
batched too) through deployment handles; answers and insights of a call run in parallel.
Models come from the MLflow registry by alias. ``user_config`` carries the model references,
the reload period and the batch sizes: changing it (``serve deploy`` with a new config) calls
``reconfigure`` on the running replicas, which load the new models beside the old and swap, so
there is no downtime; each text replica also asks the registry every ``reload_seconds`` whether
an alias moved. Deployment options (replicas, autoscaling, CPUs) come from ``serving/serve.yaml``,
which is also a valid Ray Serve config file for ``serve deploy`` and KubeRay's RayService.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from ray import serve
from ray.serve.handle import DeploymentHandle

from callqa.questionnaire import load_questionnaire
from callqa.schemas import Answer, AudioInfo, Call, CallResult, Questionnaire
from callqa.settings import Settings
from serving.api import Service, create_app
from serving.backend import Reloader
from serving.engine import AudioMeta, Engine, Insights, assemble, questionnaire_key

log = logging.getLogger(__name__)
SERVE_CONFIG = Path(__file__).with_name("serve.yaml")
APP_NAME = "callqa"
STAGES = ("api", "speech", "answers", "insights")


def _settings(payload: dict[str, Any] | None) -> Settings:
    return Settings.model_validate(payload) if payload else Settings()


def settings_payload(settings: Settings) -> dict[str, Any]:
    """Settings a replica can rebuild anywhere: paths made absolute (replicas run in other directories)."""
    data = settings.model_dump(mode="json", exclude_none=True)
    for name in ("home", "questionnaire", "lexicon", "zero_shot_config"):
        data[name] = str(Path(getattr(settings, name)).resolve())
    if settings.store and "://" not in settings.store:
        data["store"] = str(Path(settings.store).resolve())
    return data


class _TextStage:
    """Shared by the text deployments: an engine for the stage's tasks, its registry watcher, the batch settings."""

    tasks: tuple[str, ...] = ()

    def __init__(self, settings: dict[str, Any] | None) -> None:
        self.settings = _settings(settings)
        self.engine = Engine(self.settings, load_questionnaire(self.settings.questionnaire), tasks=self.tasks)
        self.engine.load()
        self.reloader = Reloader(self.engine.refresh, self.settings.serving.reload_seconds)
        self.reloader.start()

    def _reconfigure(self, config: dict[str, Any], batched) -> None:
        self.engine.reconfigure(config.get("models") or {})
        if "reload_seconds" in config and float(config["reload_seconds"]) != self.reloader.seconds:
            self.reloader.stop()
            self.reloader = Reloader(self.engine.refresh, float(config["reload_seconds"]))
            self.reloader.start()
        if "batch_size" in config:
            batched.set_max_batch_size(int(config["batch_size"]))
        if "batch_wait_ms" in config:
            batched.set_batch_wait_timeout_s(float(config["batch_wait_ms"]) / 1000)

    def models(self) -> dict[str, str]:
        return self.engine.model_names()


Answered = tuple[list[Answer], str, dict[str, Any]]  # answers, the model's name, the call's encoder states


def _by_questionnaire(questionnaires: list[Questionnaire]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(questionnaires):
        groups[questionnaire_key(q)].append(i)
    return groups


@serve.deployment(name="answers")
class AnswersStage(_TextStage):
    """Answers to the questionnaire; calls arriving together go through the model in one batch."""

    tasks = ("answers",)

    def reconfigure(self, config: dict[str, Any]) -> None:
        self._reconfigure(config, self.answer)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def answer(self, calls: list[Call], questionnaires: list[Questionnaire]) -> list[Answered]:
        return await asyncio.to_thread(self._answer_batch, calls, questionnaires)

    def _answer_batch(self, calls: list[Call], questionnaires: list[Questionnaire]) -> list[Answered]:
        out: list[Answered | None] = [None] * len(calls)
        for idx in _by_questionnaire(questionnaires).values():
            docs = [self.engine.document(calls[i]) for i in idx]
            found, name = self.engine.answers([calls[i] for i in idx], questionnaires[idx[0]], docs)
            for i, answers, encodings in zip(idx, found, self.engine.encodings_of(docs), strict=True):
                out[i] = (answers, name, encodings)
        return out  # type: ignore[return-value]


@serve.deployment(name="insights")
class InsightsStage(_TextStage):
    """Call metrics, manager errors with quotes, call type."""

    tasks = ("errors", "calltype")

    def reconfigure(self, config: dict[str, Any]) -> None:
        self._reconfigure(config, self.insight)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def insight(
        self, calls: list[Call], questionnaires: list[Questionnaire], encodings: list[dict[str, Any]]
    ) -> list[Insights]:
        return await asyncio.to_thread(
            lambda: [
                self.engine.insights(c, q, encodings=e)
                for c, q, e in zip(calls, questionnaires, encodings, strict=True)
            ]
        )


@serve.deployment(name="speech")
class SpeechStage:
    """VAD, diarization, ASR: a recording's bytes → a timed transcript."""

    def __init__(self, settings: dict[str, Any] | None) -> None:
        self.settings = _settings(settings)
        self.engine = Engine(self.settings, load_questionnaire(self.settings.questionnaire))
        if self.settings.serving.preload_speech:
            _ = self.engine.speech

    def transcribe(self, data: bytes, meta: AudioMeta) -> tuple[Call, AudioInfo]:
        return self.engine.transcribe(data, meta)


class RayBackend:
    """The API's backend inside the ingress replica: the stages are deployment handles."""

    def __init__(self, speech: DeploymentHandle, answers: DeploymentHandle, insights: DeploymentHandle) -> None:
        self.speech = speech
        self.answers = answers
        self.insights = insights
        self._ready = threading.Event()
        self._models: dict[str, str] = {}

    def warm_up(self) -> None:
        # each call waits for its deployment's replicas: ready means every stage answers
        self._models = self._stage_models()
        self._ready.set()
        threading.Thread(target=self._watch_models, name="callqa-models", daemon=True).start()

    def _watch_models(self) -> None:
        while True:
            time.sleep(5.0)
            try:
                self._models = self._stage_models()
            except Exception:
                log.warning("could not read the stages' model versions", exc_info=True)

    def _stage_models(self) -> dict[str, str]:
        """Each task's model as the stage that runs it reports it (each stage loads and refreshes only its own
        tasks, on its own clock)."""
        return {**self.insights.models.remote().result(), **self.answers.models.remote().result()}

    def ready(self) -> bool:
        return self._ready.is_set()

    def models(self) -> dict[str, str]:
        return dict(self._models)

    # The answers stage runs the call through the encoder and hands its states on: the insights stage
    # (errors, call type) reads the same states instead of encoding the call a second time.
    async def transcript(self, call: Call, questionnaire: Questionnaire) -> CallResult:
        answers, name, encodings = await self.answers.answer.remote(call, questionnaire)
        found = await self.insights.insight.remote(call, questionnaire, encodings)
        return assemble(call, questionnaire, answers, name, found)

    def audio(self, data: bytes, meta: AudioMeta, questionnaire: Questionnaire) -> CallResult:
        call, info = self.speech.transcribe.remote(data, meta).result()
        answers, name, encodings = self.answers.answer.remote(call, questionnaire).result()
        insights = self.insights.insight.remote(call, questionnaire, encodings).result()
        return assemble(call, questionnaire, answers, name, insights, audio=info)


@serve.deployment(name="api")
@serve.ingress()
class ApiIngress:
    """The FastAPI app; its job workers run recordings through the stage handles."""

    def __init__(
        self,
        settings: dict[str, Any] | None,
        speech: DeploymentHandle,
        answers: DeploymentHandle,
        insights: DeploymentHandle,
    ) -> None:
        self.settings = _settings(settings)
        self.backend = RayBackend(speech, answers, insights)

    def __serve_build_asgi_app__(self):
        default = load_questionnaire(self.settings.questionnaire)
        return create_app(Service(self.settings, self.backend, default))


def deployment_options(config: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per-deployment options (replicas, autoscaling, resources, user_config) from the serve config."""
    config = config if config is not None else yaml.safe_load(SERVE_CONFIG.read_text())
    app = next((a for a in config.get("applications", []) if a.get("name") == APP_NAME), None)
    if app is None:
        return {}
    return {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in app.get("deployments", [])}


def build(args: dict[str, Any] | None = None, options: dict[str, dict[str, Any]] | None = None):
    """The application graph (``import_path: serving.deployments:build`` in a Ray Serve config)."""
    args = args or {}
    settings = args.get("settings")
    options = options if options is not None else {}
    batching = _settings(settings).serving
    text_config = {"reload_seconds": batching.reload_seconds, "batch_size": batching.batch_size,
                   "batch_wait_ms": batching.batch_wait_ms}  # fmt: skip

    def opts(name: str, deployment):
        chosen = dict(options.get(name, {}))
        if name in ("answers", "insights"):
            chosen["user_config"] = {**text_config, **chosen.get("user_config", {})}
        return deployment.options(**chosen) if chosen else deployment

    speech = opts("speech", SpeechStage).bind(settings)
    answers = opts("answers", AnswersStage).bind(settings)
    insights = opts("insights", InsightsStage).bind(settings)
    return opts("api", ApiIngress).bind(settings, speech, answers, insights)
