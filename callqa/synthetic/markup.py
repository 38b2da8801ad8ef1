"""The phrase-bank template language: slots, gendered and random alternatives, and answer-span marks.

A template is filled, then parsed::

    "ну, [[берём у {sup.gen}]], уже {~:года три|лет пять}. а [dm[решает {dm}]]."

- ``{slot}`` / ``{slot.case}`` is replaced from the call's slots;
- ``{~:a|b|c}`` picks one alternative at random; ``{a:он|она}`` / ``{c:…}`` / ``{g:…}`` pick by the
  gender of the agent, the client or the gatekeeper (masculine first);
- ``[[…]]`` marks the answer span of the template's own question, ``[code[…]]`` a span of another
  question (codes in ``CODES``); marks may nest.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

CODES = {
    "sup": "current_supplier",
    "time": "next_purchase",
    "money": "last_purchase_amount",
    "proc": "decision_process",
    "crit": "selection_criteria",
    "dm": "decision_maker",
    "plan": "planned_equipment",
    "comp": "competitor_offers",
    "freq": "frequent_items",
    "start": "start_conditions",
}

_SLOT = re.compile(r"\{([^{}]+)\}")
_MARK = re.compile(r"\[([a-z]*)\[|\]\]")
# Spans never start or end on spaces or sentence punctuation (the dev files label clauses, not commas).
_TRIM = " ,.;:!?…—"


class TemplateError(ValueError):
    """A phrase-bank template names a missing slot or has unbalanced marks."""


@dataclass(frozen=True)
class Mark:
    """A marked span in parsed text: ``code`` is "" for the template's own question."""

    code: str
    start: int
    end: int


def fill(template: str, slots: Mapping[str, str], rng: random.Random, genders: Mapping[str, bool]) -> str:
    """Replace slots and alternatives; innermost braces first, so alternatives may hold slots."""

    def replace(match: re.Match[str]) -> str:
        key = match[1]
        who, sep, alternatives = key.partition(":")
        if sep and len(who) == 1:
            options = alternatives.split("|")
            if who == "~":
                return rng.choice(options)
            if who not in genders:
                raise TemplateError(f"unknown speaker {who!r} in {template!r}")
            return options[-1] if genders[who] else options[0]
        try:
            return slots[key]
        except KeyError:
            raise TemplateError(f"unknown slot {key!r} in {template!r}") from None

    text = template
    while True:
        filled = _SLOT.sub(replace, text)
        if filled == text:
            return filled
        text = filled


def parse(text: str) -> tuple[str, list[Mark]]:
    """Strip span marks; return the plain text and the marks (trimmed of spaces and punctuation)."""
    pieces: list[str] = []
    stack: list[tuple[str, int]] = []
    marks: list[Mark] = []
    length = pos = 0
    for match in _MARK.finditer(text):
        pieces.append(text[pos : match.start()])
        length += match.start() - pos
        pos = match.end()
        if match[0] == "]]":
            if not stack:
                raise TemplateError(f"unbalanced ']]' in {text!r}")
            code, start = stack.pop()
            marks.append(Mark(code, start, length))
        else:
            if match[1] and match[1] not in CODES:
                raise TemplateError(f"unknown span code {match[1]!r} in {text!r}")
            stack.append((match[1], length))
    if stack:
        raise TemplateError(f"unclosed span in {text!r}")
    pieces.append(text[pos:])
    plain = "".join(pieces)
    return plain, [_trim(plain, m) for m in marks]


def _trim(text: str, mark: Mark) -> Mark:
    start, end = mark.start, mark.end
    while start < end and text[start] in _TRIM:
        start += 1
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    return Mark(mark.code, start, end)


_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([«\"]?)([a-zа-яё])")


def capitalise(text: str) -> str:
    """Capitalise the first letter of every sentence (phrase banks are written lowercase-initial)."""
    return _SENTENCE_START.sub(lambda m: m[1] + m[2] + m[3].upper(), text)
