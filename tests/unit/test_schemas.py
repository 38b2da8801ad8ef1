from __future__ import annotations

import pytest
from pydantic import ValidationError

from callqa.schemas import Call, LabelledCall, Questionnaire, Speaker, Turn


def test_questionnaire_rejects_duplicate_ids() -> None:
    with pytest.raises(ValidationError, match="duplicate question ids: a"):
        Questionnaire(name="q", questions=[{"id": "a", "text": "Первый?"}, {"id": "a", "text": "Второй?"}])


def test_question_id_must_be_a_slug() -> None:
    with pytest.raises(ValidationError):
        Questionnaire(name="q", questions=[{"id": "Bad Id", "text": "Вопрос?"}])


def test_call_with_only_empty_turns_is_rejected() -> None:
    with pytest.raises(ValidationError, match="transcript is empty"):
        Call(call_id="x", turns=[Turn(speaker=Speaker.AGENT, text="  ")])


def test_turn_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="ends"):
        Turn(speaker="CLIENT", text="да", start=5.0, end=4.0)


def _labelled(answer: dict) -> dict:
    return {
        "call_id": "c",
        "turns": [{"speaker": "AGENT", "text": "У кого берёте?"}, {"speaker": "CLIENT", "text": "У Абамета берём."}],
        "answers": {"current_supplier": answer},
    }


def test_gold_answer_must_be_a_substring_of_its_turn() -> None:
    with pytest.raises(ValidationError, match="not a substring"):
        LabelledCall.model_validate(_labelled({"turn": 1, "text": "у Абамета", "value": "Абамет"}))


def test_gold_answer_must_be_in_a_client_turn() -> None:
    with pytest.raises(ValidationError, match="spoken by AGENT"):
        LabelledCall.model_validate(_labelled({"turn": 0, "text": "У кого", "value": None}))


def test_gold_answer_turn_must_exist() -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        LabelledCall.model_validate(_labelled({"turn": 7, "text": "x", "value": None}))


def test_gold_span_gives_exact_offsets() -> None:
    call = LabelledCall.model_validate(_labelled({"turn": 1, "text": "Абамета берём", "value": "Абамет"}))
    turn, start, end = call.gold_span("current_supplier")
    assert call.turns[turn].text[start:end] == "Абамета берём"
    assert call.gold_span("next_purchase") is None


def test_unknown_call_type_and_error_are_rejected() -> None:
    data = _labelled({"turn": 1, "text": "Абамета", "value": "Абамет"})
    with pytest.raises(ValidationError, match="call_type"):
        LabelledCall.model_validate({**data, "call_type": "sales"})
    with pytest.raises(ValidationError, match="errors"):
        LabelledCall.model_validate({**data, "errors": ["rude"]})
    with pytest.raises(ValidationError, match="nps"):
        LabelledCall.model_validate({**data, "nps": 11})
