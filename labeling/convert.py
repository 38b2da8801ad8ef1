"""Between our data and Label Studio's: calls → task data, results → predictions, annotations → labels.

Region formats (``labeling.config`` names the tags):

* speaker region on the audio: ``labels`` with ``start``/``end`` seconds and ``labels: [AGENT|CLIENT]``;
* answer span: ``paragraphlabels`` with ``start``/``end`` = the turn index (paragraph) and
  ``startOffset``/``endOffset`` = character offsets inside that turn's text; its normalised value
  is a per-region ``textarea`` result carrying the same region ``id``;
* ``errors`` / ``call_type``: ``choices``; ``nps``: ``number``; ``callback``: ``textarea``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from callqa.errors import BadInput
from callqa.schemas import (
    AnswerValue,
    CallResult,
    CallType,
    ErrorId,
    GoldAnswer,
    LabelledCall,
    QuestionKind,
    Questionnaire,
    Speaker,
    Turn,
)
from callqa.speech.segments import SpeakerSegment
from labeling.config import ANSWER, AUDIO, CALL_TYPE, CALLBACK, ERRORS, NOTES, NPS, SPEAKER, TRANSCRIPT, VALUE

YES = {"да", "yes", "true", "1", "есть", "+"}
NO = {"нет", "no", "false", "0", "-"}


def format_value(value: AnswerValue) -> str | None:
    """An answer value as the annotator sees and types it (None: no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "да" if value else "нет"
    return str(value)


def parse_value(text: str | None, kind: QuestionKind) -> AnswerValue:
    """What an annotator typed, normalised by the question's kind (numbers, yes/no); text stays text."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if kind == QuestionKind.YES_NO:
        low = raw.lower()
        if low in YES:
            return True
        if low in NO:
            return False
        return raw
    if kind in (QuestionKind.MONEY_RUB, QuestionKind.NUMBER):
        compact = re.sub(r"[\s\u00a0_]", "", raw).replace(",", ".")
        if re.fullmatch(r"-?\d+", compact):
            return int(compact)
        if re.fullmatch(r"-?\d+\.\d+", compact):
            number = float(compact)
            return int(number) if kind == QuestionKind.MONEY_RUB and number.is_integer() else number
        return raw
    return raw


def task_data(call: LabelledCall, audio_url: str | None, questionnaire: Questionnaire) -> dict[str, Any]:
    """The task's ``data``: what the annotator sees plus what we need to rebuild the call."""
    turns = []
    for t in call.turns:
        item: dict[str, Any] = {"speaker": t.speaker.value, "text": t.text}
        if t.start is not None and t.end is not None:
            item |= {"start": t.start, "end": t.end}
        if t.words:
            item["words"] = [w.model_dump(exclude_none=True) for w in t.words]
        turns.append(item)
    data: dict[str, Any] = {
        "call_id": call.call_id,
        "questionnaire": questionnaire.name,
        "audio": audio_url or "",
        "turns": turns,
        "industry": call.industry,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "manager_id": call.manager_id,
    }
    return {k: v for k, v in data.items() if v is not None}


def call_of_task(data: dict[str, Any]) -> LabelledCall:
    """The unlabelled call a task was made from (labels come from the annotation)."""
    try:
        turns = [
            Turn(
                speaker=Speaker(t["speaker"]),
                text=t["text"],
                start=t.get("start"),
                end=t.get("end"),
                words=t.get("words"),
            )
            for t in data["turns"]
        ]
        return LabelledCall(
            call_id=data["call_id"],
            industry=data.get("industry"),
            started_at=data.get("started_at"),
            manager_id=data.get("manager_id"),
            turns=turns,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"task data is not a callqa call ({exc}); was the task created by `callqa label push`?") from exc


def _answer_region(region_id: str, turn: int, start: int, end: int, text: str, qid: str) -> dict[str, Any]:
    value = {"start": turn, "end": turn, "startOffset": start, "endOffset": end, "text": text}
    return {
        "id": region_id,
        "from_name": ANSWER,
        "to_name": TRANSCRIPT,
        "type": "paragraphlabels",
        "value": value | {"paragraphlabels": [qid]},
    }


def _value_result(region: dict[str, Any], text: str) -> dict[str, Any]:
    geometry = {k: region["value"][k] for k in ("start", "end", "startOffset", "endOffset")}
    return {
        "id": region["id"],
        "from_name": VALUE,
        "to_name": TRANSCRIPT,
        "type": "textarea",
        "value": geometry | {"text": [text]},
    }


def speaker_regions(segments: list[SpeakerSegment], duration: float | None) -> list[dict[str, Any]]:
    out = []
    for k, seg in enumerate(segments):
        if seg.speaker not in (Speaker.AGENT.value, Speaker.CLIENT.value) or seg.end <= seg.start:
            continue
        item: dict[str, Any] = {
            "id": f"spk{k}",
            "from_name": SPEAKER,
            "to_name": AUDIO,
            "type": "labels",
            "value": {"start": round(seg.start, 3), "end": round(seg.end, 3), "channel": 0, "labels": [seg.speaker]},
        }
        if duration:
            item["original_length"] = round(duration, 3)
        out.append(item)
    return out


def _choices(name: str, values: list[str]) -> dict[str, Any]:
    return {"id": name, "from_name": name, "to_name": TRANSCRIPT, "type": "choices", "value": {"choices": values}}


@dataclass
class Span:
    """An answer region to write: where it is, its value, and (for predictions) the model's confidence."""

    question_id: str
    turn: int
    start: int
    end: int
    text: str
    value: AnswerValue
    score: float | None = None


def _results(
    spans: list[Span],
    segments: list[SpeakerSegment] | None,
    duration: float | None,
    errors: list[str],
    call_type: str | None,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for span in spans:
        region = _answer_region(f"ans-{span.question_id}", span.turn, span.start, span.end, span.text, span.question_id)
        if span.score is not None:
            region["score"] = round(span.score, 4)
        out.append(region)
        text = format_value(span.value)
        if text is not None:
            out.append(_value_result(region, text))
    if segments:
        out.extend(speaker_regions(segments, duration))
    if errors:
        out.append(_choices(ERRORS, errors))
    if call_type is not None:
        out.append(_choices(CALL_TYPE, [call_type]))
    return out


def labels_to_results(
    call: LabelledCall, segments: list[SpeakerSegment] | None = None, duration: float | None = None
) -> list[dict[str, Any]]:
    """A labelled call as Label Studio results (the simulated annotator's answer and round-trip tests)."""
    spans = []
    for qid, gold in call.answers.items():
        if gold is not None:
            turn, start, end = call.gold_span(qid)
            spans.append(Span(qid, turn, start, end, gold.text, gold.value))
    call_type = call.call_type.value if call.call_type is not None else None
    results = _results(spans, segments, duration, [e.value for e in call.errors], call_type)
    if call.nps is not None:
        results.append(
            {"id": NPS, "from_name": NPS, "to_name": TRANSCRIPT, "type": "number", "value": {"number": call.nps}}
        )
    for name, text in ((CALLBACK, call.callback), (NOTES, call.notes)):
        if text:
            results.append(
                {"id": name, "from_name": name, "to_name": TRANSCRIPT, "type": "textarea", "value": {"text": [text]}}
            )
    return results


def prediction_results(result: CallResult, segments: list[SpeakerSegment] | None, duration: float | None) -> list[dict]:
    """A model's ``CallResult`` as pre-annotations (answers with their confidence as region score)."""
    spans = [
        Span(a.question_id, a.turn, a.char_start, a.char_end, a.text, a.value, a.confidence) for a in result.answers
    ]
    errors = [e.error.value for e in result.errors or []]
    call_type = result.call_type.call_type.value if result.call_type is not None else None
    return _results(spans, segments, duration, errors, call_type)


@dataclass
class Conversion:
    """One annotation turned back into our format, with what could not be used."""

    call: LabelledCall
    segments: list[SpeakerSegment]
    problems: list[str] = field(default_factory=list)


def _text_list(value: dict[str, Any]) -> str | None:
    text = value.get("text")
    if isinstance(text, list):
        text = "\n".join(str(t) for t in text)
    return text if isinstance(text, str) and text.strip() else None


def results_to_labels(data: dict[str, Any], results: list[dict[str, Any]], questionnaire: Questionnaire) -> Conversion:
    """An annotation's results as a labelled call (DESIGN.md §4) and speaker segments."""
    base = call_of_task(data)
    problems: list[str] = []
    values: dict[str, str | None] = {}
    for r in results:
        if r.get("from_name") == VALUE:
            values[str(r.get("id"))] = _text_list(r.get("value", {}))
    answers: dict[str, GoldAnswer | None] = dict.fromkeys(questionnaire.ids)
    spans: dict[str, tuple[int, int]] = {}
    segments: list[SpeakerSegment] = []
    errors: list[ErrorId] = []
    call_type: CallType | None = None
    nps: int | None = None
    callback: str | None = None
    notes = ""
    for r in results:
        name, value = r.get("from_name"), r.get("value", {})
        if name == ANSWER:
            for qid in value.get("paragraphlabels", []):
                if qid not in answers:
                    problems.append(f"answer label {qid!r} is not a question of {questionnaire.name!r}")
                    continue
                try:
                    turn, end_turn = int(value["start"]), int(value["end"])
                    start, end = int(value["startOffset"]), int(value["endOffset"])
                except (KeyError, TypeError, ValueError):
                    problems.append(f"{qid}: a span without paragraph offsets")
                    continue
                if turn != end_turn or not 0 <= turn < len(base.turns):
                    problems.append(f"{qid}: the span must lie inside one turn (got turns {turn}..{end_turn})")
                    continue
                if base.turns[turn].speaker != Speaker.CLIENT:
                    problems.append(f"{qid}: the span is in turn {turn}, spoken by {base.turns[turn].speaker}")
                    continue
                text = base.turns[turn].text[start:end]
                stripped = text.strip()
                if not stripped:
                    problems.append(f"{qid}: empty span")
                    continue
                if qid in spans and (turn, start) > spans[qid]:
                    problems.append(f"{qid}: several spans; kept the first")
                    continue
                spans[qid] = (turn, start)
                kind = questionnaire.get(qid).kind
                answers[qid] = GoldAnswer(
                    turn=turn, text=stripped, value=parse_value(values.get(str(r.get("id"))), kind)
                )
        elif name == SPEAKER:
            labels = value.get("labels") or []
            try:
                seg = SpeakerSegment(float(value["start"]), float(value["end"]), str(labels[0]))
            except (KeyError, TypeError, ValueError, IndexError):
                problems.append("a speaker region without start, end or label")
                continue
            if seg.speaker in (Speaker.AGENT.value, Speaker.CLIENT.value) and seg.end > seg.start:
                segments.append(seg)
        elif name == ERRORS:
            for choice in value.get("choices", []):
                try:
                    errors.append(ErrorId(choice))
                except ValueError:
                    problems.append(f"unknown error label {choice!r}")
        elif name == CALL_TYPE:
            choices = value.get("choices") or []
            try:
                call_type = CallType(choices[0]) if choices else None
            except ValueError:
                problems.append(f"unknown call type {choices[0]!r}")
        elif name == NPS:
            number = value.get("number")
            if isinstance(number, int | float) and 0 <= number <= 10:
                nps = int(number)
            elif number is not None:
                problems.append(f"NPS {number!r} is not 0..10")
        elif name == CALLBACK:
            callback = _text_list(value)
        elif name == NOTES:
            notes = _text_list(value) or ""
    segments.sort(key=lambda s: (s.start, s.end))
    order = list(dict.fromkeys(errors))  # the annotator's order, no duplicates
    call = base.model_copy(
        update={
            "answers": answers,
            "errors": order,
            "call_type": call_type,
            "nps": nps,
            "callback": callback,
            "notes": notes,
        }
    )
    return Conversion(LabelledCall.model_validate(call.model_dump()), segments, problems)
