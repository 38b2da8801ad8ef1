from __future__ import annotations

from datetime import datetime

import pytest

from callqa.schemas import Questionnaire
from callqa.understanding.answers import ZeroShotAnswerExtractor
from callqa.understanding.document import CallDocument
from tests.builders import make_call


@pytest.fixture(scope="module")
def extractor(questionnaire) -> ZeroShotAnswerExtractor:
    return ZeroShotAnswerExtractor(questionnaire)


def _by_id(answers):
    return {a.question_id: a for a in answers}


def test_answers_a_qualification_call(extractor, supplier_call) -> None:
    call = supplier_call.to_call()
    answers = _by_id(extractor.extract(call))
    assert answers["current_supplier"].value == "Подшипник-Центр"
    assert answers["last_purchase_amount"].value == 1_500_000
    assert answers["decision_maker"].value == "генеральный директор, Сергей Петрович"
    assert "competitor_offers" not in answers  # "Этого я вам не скажу" is a refusal, not an answer
    for a in answers.values():
        turn = call.turns[a.turn]
        assert turn.speaker == "CLIENT"
        assert turn.text[a.char_start : a.char_end] == a.text
        assert a.text in a.evidence
        assert 0 < a.confidence < 1


def test_volunteered_answer_without_a_question(extractor) -> None:
    call = make_call(
        ("AGENT", "Добрый день, компания «Кабель-Опт», Игорь. Хотел предложить вам кабель со склада."),
        ("CLIENT", "Слушайте, нам не надо, мы уже три года работаем с Севзапкабелем, они нам всё поставляют."),
        ("AGENT", "Понял, извините."),
    )
    answers = _by_id(extractor.extract(call))
    assert answers["current_supplier"].value == "Севзапкабель"


def test_purchase_date_resolved_and_callback_time_ignored(extractor) -> None:
    call = make_call(
        ("AGENT", "А когда планируете следующую закупку?"),
        ("CLIENT", "Закупку планируем в марте, когда бюджет утвердят."),
        ("AGENT", "Когда вам удобно, чтобы я перезвонил?"),
        ("CLIENT", "Перезвоните в четверг после обеда."),
        started_at=datetime(2026, 11, 23, 10, 0),
    )
    answer = _by_id(extractor.extract(call))["next_purchase"]
    assert answer.value == "в марте"
    assert answer.resolved_date.isoformat() == "2027-03-01"
    assert answer.turn == 1


def test_past_purchase_is_not_the_next_one(extractor) -> None:
    call = make_call(
        ("AGENT", "А по срокам что у вас?"),
        ("CLIENT", "Весной брали партию частотников, сейчас ничего не нужно."),
    )
    assert "next_purchase" not in _by_id(extractor.extract(call))


def test_raw_asr_text(extractor) -> None:
    call = make_call(
        ("AGENT", "а по объему последняя закупка какая была примерно"),
        ("CLIENT", "ну последняя была тысяч на семьсот пятьдесят где то"),
        ("AGENT", "а следующую когда планируете"),
        ("CLIENT", "в конце квартала наверное"),
    )
    answers = _by_id(extractor.extract(call))
    assert answers["last_purchase_amount"].value == 750_000
    assert answers["next_purchase"].value == "в конце квартала"


def test_any_questionnaire_works_without_examples() -> None:
    q = Questionnaire(
        name="hr_v1",
        questions=[
            {"id": "headcount", "text": "Сколько сотрудников работает в компании?", "kind": "number"},
            {"id": "hiring_manager", "text": "Кто у вас отвечает за найм?", "kind": "person_or_role"},
        ],
    )
    call = make_call(
        ("AGENT", "Подскажите, сколько у вас сотрудников?"),
        ("CLIENT", "Сейчас сто двадцать человек в штате."),
        ("AGENT", "А кто у вас отвечает за найм персонала?"),
        ("CLIENT", "Этим занимается директор по персоналу, Анна Викторовна."),
    )
    answers = _by_id(ZeroShotAnswerExtractor(q).extract(call))
    assert answers["headcount"].value == 120
    assert answers["hiring_manager"].value == "директор по персоналу, Анна Викторовна"


def test_small_talk_call_has_no_answers(extractor) -> None:
    call = make_call(
        ("AGENT", "Сервисный центр, слушаю."),
        ("CLIENT", "Здравствуйте, у меня кондиционер не включается."),
        ("AGENT", "Назовите адрес, пришлём мастера."),
        ("CLIENT", "Улица Ленина, пятнадцать."),
    )
    assert extractor.extract(call) == []


def test_answer_span_is_the_sentence_with_the_amount_and_has_word_times(extractor) -> None:
    from callqa.schemas import Call, Turn, Word

    text = "Где-то восемь… нет, девять и две, с доставкой. Девять миллионов двести."
    words = [
        Word(text=w, start=10.0 + i * 0.4, end=10.3 + i * 0.4) for i, w in enumerate(text.replace("…", " ").split())
    ]
    call = Call(
        call_id="timed",
        turns=[
            Turn(speaker="AGENT", text="А последний станок на какую сумму был?", start=5.0, end=9.0),
            Turn(speaker="CLIENT", text=text, start=10.0, end=14.0, words=words),
        ],
    )
    answer = _by_id(extractor.extract(call))["last_purchase_amount"]
    assert answer.value == 9_200_000
    assert answer.text == "Девять миллионов двести"
    assert answer.evidence.startswith("Где-то восемь")
    first = next(w for w in words if w.text == "Девять")
    assert answer.start == first.start
    assert answer.end == words[-1].end


def test_supplier_value_keeps_the_present_one_of_a_past_and_a_present(extractor) -> None:
    call = make_call(
        ("AGENT", "Через кого сейчас берёте частотники?"),
        ("CLIENT", "С Сименсом раньше работали, сейчас перешли на китайские, через Приводсервис берём."),
    )
    end = call.turns[1].text.index("берём") + len("берём")
    doc = CallDocument.build(call, extractor.lexicon)
    answer = extractor.span_answer(doc, extractor.question_ids.index("current_supplier"), 1, 0, end, 0.9)
    assert answer.value == "Приводсервис"
