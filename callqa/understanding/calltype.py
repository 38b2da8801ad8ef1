"""Zero-shot call-type signals from the transcript."""

from __future__ import annotations

import re
from functools import lru_cache

from callqa.schemas import Speaker
from callqa.text.lexicon import Lexicon
from callqa.understanding.document import CallDocument

OPENING_CLIENT_TURNS = 4


@lru_cache(maxsize=64)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled alternation per phrase list (lexicon lists are tuples, so this caches per list)."""
    if not phrases:
        return None
    return re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases))


def has_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    """Whether any phrase is said in ``text`` (whole words, case- and ё-insensitive)."""
    pattern = _phrase_pattern(tuple(phrases))
    return pattern is not None and pattern.search(text.lower().replace("ё", "е")) is not None


def is_vendor_pitch(doc: CallDocument, lexicon: Lexicon) -> bool:
    """The caller on the client side introduces a company and pitches to us (spam for the questionnaire).

    In such calls the client's words ("мы занимаемся…", "хотим предложить вам…") answer none
    of our qualification questions, whatever companies, prices or dates they mention.
    """
    opening = [t.text for t in doc.turns if t.speaker == Speaker.CLIENT][:OPENING_CLIENT_TURNS]
    return any(has_phrase(t, lexicon.self_introduction) for t in opening) and any(
        has_phrase(t, lexicon.vendor_pitch) for t in opening
    )
