"""The embedded server: the API and every stage in this process, no Ray cluster."""

from __future__ import annotations

from fastapi import FastAPI

from callqa.questionnaire import load_questionnaire
from callqa.settings import Settings
from serving.api import Service, create_app
from serving.backend import LocalBackend
from serving.engine import Engine


def local_app(settings: Settings, *, run_workers: bool = True) -> FastAPI:
    """The API over one in-process engine (``callqa serve --local``)."""
    default = load_questionnaire(settings.questionnaire)
    cfg = settings.serving
    backend = LocalBackend(
        Engine(settings, default), preload_speech=cfg.preload_speech, reload_seconds=cfg.reload_seconds
    )
    return create_app(Service(settings, backend, default, run_workers=run_workers))
