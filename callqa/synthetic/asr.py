"""Raw-ASR rendering of labelled calls: lowercase, no punctuation, numbers as words, spans kept exact."""

from __future__ import annotations

import itertools
import logging
import re
from functools import lru_cache

from num2words import num2words

from callqa.schemas import GoldAnswer, LabelledCall, QuestionKind, Questionnaire, Turn
from callqa.synthetic.russian import number_words, plural

log = logging.getLogger(__name__)

# A number with optional thousands groups ("1 700 000"), decimal part ("2,5") and unit ("млн", "тыс.", "%").
_NUMBER = re.compile(
    r"(?P<int>\d{1,3}(?:[ \u00a0]\d{3})+(?!\d)|\d+)(?:,(?P<frac>\d+))?"
    r"(?:\s*(?P<unit>миллион[а-я]*|млн\.?|тысяч[а-я]*|тыс\.?|%))?"
)
_CUT_OFF = re.compile(r"[—–]\s*$")
_NOT_A_WORD_CHAR = re.compile(r"[^a-zа-я0-9]+")
_PERCENT = ("процент", "процента", "процентов")
_HALF = {"million": ("миллиона", "миллиона", "миллионов"), "thousand": ("тысячи", "тысячи", "тысяч")}


def _unit_kind(unit: str | None) -> str | None:
    if not unit:
        return None
    if unit.startswith(("млн", "миллион")):
        return "million"
    if unit.startswith("тыс"):
        return "thousand"
    return "percent"


def _feminine(words: str) -> str:
    """'два' → 'две', 'один' → 'одна' at the end, for counts of thousands."""
    head, _, last = words.rpartition(" ")
    last = {"один": "одна", "два": "две"}.get(last, last)
    return f"{head} {last}".strip()


def _say_number(match: re.Match[str]) -> str:
    whole = int(re.sub(r"\D", "", match["int"]))
    frac = match["frac"]
    unit = _unit_kind(match["unit"])
    if unit in ("million", "thousand"):
        if frac == "5":
            if whole == 1:
                return " полтора миллиона " if unit == "million" else " полторы тысячи "
            count = number_words(whole) if unit == "million" else _feminine(number_words(whole))
            return f" {count} с половиной {plural(whole, _HALF[unit])} "
        scale = 1_000_000 if unit == "million" else 1_000
        fraction = int(frac) / 10 ** len(frac) if frac else 0
        return f" {number_words(round((whole + fraction) * scale))} "
    if unit == "percent":
        if frac:
            return f" {num2words(float(f'{whole}.{frac}'), lang='ru')} процента "
        return f" {number_words(whole)} {plural(whole, _PERCENT)} "
    if frac:
        return f" {num2words(float(f'{whole}.{frac}'), lang='ru')} "
    return f" {number_words(whole)} "


def asr_text(text: str) -> str:
    """Render text the way a raw ASR transcript looks: lowercase words, no punctuation, no digits, no ё."""
    text = _NUMBER.sub(_say_number, text)
    text = text.replace("руб.", "рублей").lower().replace("ё", "е")
    # Hyphens and dashes become spaces too: ASR emits separate words ("пластик юг", "что то").
    return " ".join(_NOT_A_WORD_CHAR.sub(" ", text).split())


def _locate(text: str, span: str) -> int:
    """Where a gold span sits: its first occurrence on word boundaries ("директор", not in "финдиректор")."""
    first = start = text.index(span)
    while start >= 0:
        before = text[start - 1] if start else " "
        after = text[start + len(span)] if start + len(span) < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return start
        start = text.find(span, start + 1)
    return first


def _render_turn(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[str]]:
    """Render a turn piecewise, cut at every span boundary, so each span stays a run of whole words."""
    cuts = sorted({0, len(text), *(p for span in spans for p in span)})
    bounds = list(itertools.pairwise(cuts))
    pieces = [asr_text(text[a:b]).split() for a, b in bounds]
    rendered = " ".join(w for piece in pieces for w in piece)
    span_texts = [
        " ".join(w for (a, _), piece in zip(bounds, pieces, strict=True) if start <= a < end for w in piece)
        for start, end in spans
    ]
    return rendered, span_texts


@lru_cache(maxsize=1)
def _default_time_questions() -> frozenset[str]:
    from callqa.questionnaire import load_questionnaire  # reads settings: only when first needed

    return _time_questions(load_questionnaire())


def _time_questions(questionnaire: Questionnaire | None) -> frozenset[str]:
    if questionnaire is None:
        return _default_time_questions()
    return frozenset(q.id for q in questionnaire.questions if q.kind == QuestionKind.TIME_EXPRESSION)


def render_asr(call: LabelledCall, questionnaire: Questionnaire | None = None) -> LabelledCall:
    """The same call as raw ASR output; gold spans are re-rendered in place and stay exact substrings.

    Time-expression values take the rendered form; other values (roubles, names, booleans) are kept.
    """
    time_ids = _time_questions(questionnaire)
    located: dict[int, list[tuple[str, int, int]]] = {}
    for qid, gold in call.answers.items():
        if gold is not None:
            start = _locate(call.turns[gold.turn].text, gold.text)
            located.setdefault(gold.turn, []).append((qid, start, start + len(gold.text)))
    turns: list[Turn] = []
    answers: dict[str, GoldAnswer | None] = dict.fromkeys(call.answers)
    for index, turn in enumerate(call.turns):
        spans = located.get(index, [])
        text, span_texts = _render_turn(turn.text, [(a, b) for _, a, b in spans])
        if _CUT_OFF.search(turn.text) and text:
            text += " —"  # transcripts mark a turn the other side cut off (the interruption's only trace in text)
        turns.append(turn.model_copy(update={"text": text, "words": None}))
        for (qid, _, _), span_text in zip(spans, span_texts, strict=True):
            gold = call.answers[qid]
            assert gold is not None
            if not span_text:
                log.warning("answer %s of %s has no words left after ASR rendering", qid, call.call_id)
                continue
            value = asr_text(gold.value) if qid in time_ids and isinstance(gold.value, str) else gold.value
            answers[qid] = GoldAnswer(turn=index, text=span_text, value=value)
    callback = asr_text(call.callback) if call.callback else call.callback
    data = call.model_dump()
    data.update(turns=[t.model_dump() for t in turns], answers=answers, callback=callback)
    return LabelledCall.model_validate(data)
