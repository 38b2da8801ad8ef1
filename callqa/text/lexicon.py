"""The word lists of ``resources/lexicon.yaml`` as typed, normalised sets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from callqa.text.tokens import normalize
from callqa.yamlio import load_model


class Lexicon(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stopwords: frozenset[str]
    interrogatives: frozenset[str]
    filler_words: tuple[str, ...]
    value_reducing_words: tuple[str, ...]
    strong_words: tuple[str, ...]
    bad_words: tuple[str, ...]
    dodges: tuple[str, ...]
    negations: frozenset[str]
    affirmations: frozenset[str]
    roles: frozenset[str]
    not_names: frozenset[str] = frozenset()
    decision_verbs: frozenset[str]
    clause_markers: frozenset[str]
    leading_trim: frozenset[str]
    past_markers: frozenset[str]
    future_markers: frozenset[str]
    appointment_words: frozenset[str]
    decision_verbs_final: frozenset[str]
    answer_type_words: dict[str, frozenset[str]]
    self_introduction: tuple[str, ...]
    vendor_pitch: tuple[str, ...]
    objections: tuple[str, ...] = ()
    concessions: tuple[str, ...] = ()
    next_step: tuple[str, ...] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        if isinstance(value, list):
            return [normalize(str(v)) for v in value]
        if isinstance(value, dict):
            return {k: [normalize(str(v)) for v in vs] for k, vs in value.items()}
        return value


@lru_cache(maxsize=4)
def load_lexicon(path: Path) -> Lexicon:
    """Load (once per path) and validate a lexicon YAML."""
    return load_model(path, Lexicon)
