"""Questionnaires: the company's key questions, loaded from YAML."""

from __future__ import annotations

from pathlib import Path

from callqa.schemas import Questionnaire
from callqa.settings import get_settings
from callqa.yamlio import load_model


def load_questionnaire(path: str | Path | None = None) -> Questionnaire:
    """Load and validate a questionnaire YAML (the packaged default when ``path`` is None)."""
    return load_model(path or get_settings().questionnaire, Questionnaire)
