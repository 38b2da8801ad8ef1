from __future__ import annotations

from callqa.pipeline import build_text_pipeline
from callqa.understanding.metrics import count_phrases
from tests.builders import make_call


def test_longer_phrases_are_counted_first() -> None:
    counts = count_phrases("Ну, в общем-то, короче, в общем, да. Короче!", ["в общем", "в общем-то", "короче"])
    assert counts == {"в общем-то": 1, "в общем": 1, "короче": 2}


def test_metrics_of_a_call(questionnaire) -> None:
    call = make_call(
        ("AGENT", "Добрый день, извините, что беспокою. Короче, у кого сейчас берёте кабель?"),
        ("CLIENT", "У Севзапкабеля берём, уже давно, всё устраивает, спасибо."),
        ("AGENT", "А когда следующая закупка? Гарантия у нас пять лет, блин, лучшая."),
        ("CLIENT", "В марте."),
    )
    m = build_text_pipeline(questionnaire).analyze(call).metrics
    assert (m.agent_turns, m.client_turns) == (2, 2)
    assert m.agent_words == 22 and m.client_words == 10
    assert m.agent_word_share == round(22 / 32, 4)
    assert m.agent_questions == 2 and m.agent_question_rate == 1.0
    assert m.filler_words == {"короче": 1}
    assert m.filler_word_rate == round(100 / 22, 3)
    assert m.value_reducing_words == {"извините, что беспокою": 1}
    assert m.strong_words == {"гарантия": 1}
    assert m.bad_words == {"блин": 1}
    assert {"current_supplier", "next_purchase"} <= set(m.topics_covered)
    assert "decision_maker" in m.topics_missing
    assert set(m.topics_covered) | set(m.topics_missing) == set(questionnaire.ids)


def test_questions_are_counted_in_raw_asr_text(questionnaire) -> None:
    call = make_call(
        ("AGENT", "добрый день а кто у вас отвечает за закупки и когда следующая закупка"),
        ("CLIENT", "я отвечаю закупка в марте"),
    )
    assert build_text_pipeline(questionnaire).analyze(call).metrics.agent_questions >= 1
