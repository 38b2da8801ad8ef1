"""Resolve a model reference (``--model``) to an answer extractor."""

from __future__ import annotations

from callqa.errors import ModelNotFound
from callqa.schemas import Questionnaire
from callqa.understanding.answers import AnswerExtractor, ZeroShotAnswerExtractor

ZERO_SHOT = "zero-shot"


def load_answer_extractor(spec: str, questionnaire: Questionnaire) -> AnswerExtractor:
    """An extractor for ``spec``: ``zero-shot`` (rules + navec, no training needed)."""
    if spec == ZERO_SHOT:
        return ZeroShotAnswerExtractor(questionnaire)
    raise ModelNotFound(f"unknown model {spec!r} (available: {ZERO_SHOT})")
