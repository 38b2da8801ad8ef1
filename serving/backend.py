"""Where the API sends work: the in-process engine (``callqa serve --local``) or Ray Serve handles."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import anyio

from callqa.schemas import Call, CallResult, Questionnaire
from serving.engine import AudioMeta, Engine

log = logging.getLogger(__name__)


class Backend(Protocol):
    def warm_up(self) -> None:
        """Load the models (blocking); ``ready`` turns true when it returns."""

    def ready(self) -> bool: ...

    def models(self) -> dict[str, str]:
        """Task → the model version serving it."""

    async def transcript(self, call: Call, questionnaire: Questionnaire) -> CallResult: ...

    def audio(self, data: bytes, meta: AudioMeta, questionnaire: Questionnaire) -> CallResult:
        """Blocking: the job workers call it from their threads."""


class Reloader:
    """Asks the registry every ``seconds`` whether an alias moved and swaps the models if so."""

    def __init__(self, refresh, seconds: float) -> None:
        self.refresh = refresh
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="callqa-reload", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.refresh()
            except Exception:  # the registry may be down for a while; keep serving the loaded models
                log.exception("model refresh failed; keeping the loaded models")


class LocalBackend:
    """Everything in this process: one engine for speech and text."""

    def __init__(self, engine: Engine, *, preload_speech: bool = True, reload_seconds: float = 0.0) -> None:
        self.engine = engine
        self.preload_speech = preload_speech
        self.reloader = Reloader(engine.refresh, reload_seconds)
        self._ready = threading.Event()

    def warm_up(self) -> None:
        self.engine.load()
        if self.preload_speech:
            _ = self.engine.speech
        self._ready.set()
        self.reloader.start()

    def ready(self) -> bool:
        return self._ready.is_set()

    def models(self) -> dict[str, str]:
        return self.engine.model_names() if self.ready() else {}

    async def transcript(self, call: Call, questionnaire: Questionnaire) -> CallResult:
        return await anyio.to_thread.run_sync(self.engine.transcript, call, questionnaire)

    def audio(self, data: bytes, meta: AudioMeta, questionnaire: Questionnaire) -> CallResult:
        return self.engine.audio(data, meta, questionnaire)

    def close(self) -> None:
        self.reloader.stop()
