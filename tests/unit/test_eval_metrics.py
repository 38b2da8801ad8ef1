from __future__ import annotations

import pytest

from callqa.schemas import Answer, Questionnaire
from evaluation.metrics import AnswerScorer, answer_matches, metric_tokens, token_f1
from tests.builders import make_labelled

Q = Questionnaire(
    name="t",
    questions=[
        {"id": "supplier", "text": "Кто поставщик?", "kind": "organization"},
        {"id": "amount", "text": "Какая сумма?", "kind": "money_rub"},
        {"id": "when", "text": "Когда закупка?", "kind": "time_expression"},
    ],
)


def _pred(qid: str, text: str, value=None, turn: int = 1) -> Answer:
    return Answer(question_id=qid, text=text, value=value, turn=turn, char_start=0, char_end=len(text),
                  confidence=0.9, evidence=text)  # fmt: skip


def test_metric_tokens_fold_case_yo_and_punctuation() -> None:
    assert metric_tokens("Где-то — ЕЩЁ, «раз»!") == ["где", "то", "еще", "раз"]


def test_token_f1() -> None:
    assert token_f1("у Абамета берём", "у абамета берём") == 1.0
    assert token_f1("a b c d", "a b") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("x", "y") == 0.0


def test_match_by_text_overlap_or_value() -> None:
    gold = make_labelled(
        ("AGENT", "?"), ("CLIENT", "где то пятьсот тысяч"), answers={"amount": (1, "пятьсот тысяч", 500000)}
    )
    g = gold.answers["amount"]
    assert answer_matches(_pred("amount", "пятьсот тысяч рублей"), g)  # F1 = 0.8
    assert answer_matches(_pred("amount", "полмиллиона", 500000), g)  # no overlap, equal value
    assert not answer_matches(_pred("amount", "семьсот", 700000), g)


def test_scores_exactly_as_defined() -> None:
    # call 1: supplier matched, amount wrong, when: predicted but no gold (false positive)
    c1 = make_labelled(
        ("AGENT", "?"), ("CLIENT", "Берём у Абамета, последняя была на миллион."),
        call_id="c1", answers={"supplier": (1, "Берём у Абамета", "Абамет"), "amount": (1, "на миллион", 1_000_000)},
    )  # fmt: skip
    p1 = [_pred("supplier", "у Абамета", "Абамет"), _pred("amount", "последняя", 2_000_000), _pred("when", "была")]
    # call 2: nothing in gold, nothing predicted (all three correct "no answer"); when gold missed
    c2 = make_labelled(("AGENT", "?"), ("CLIENT", "Весной."), call_id="c2", answers={"when": (1, "Весной", "весной")})
    scorer = AnswerScorer(Q)
    scorer.add(c1, p1)
    scorer.add(c2, [])
    r = scorer.result()
    # gold 3, predicted 3, matched 1
    assert r.answer_precision == pytest.approx(1 / 3)
    assert r.answer_recall == pytest.approx(1 / 3)
    assert r.answer_f1 == pytest.approx(1 / 3)
    # 6 cells: c1 supplier ✓, amount ✗, when ✗ (spurious); c2 supplier ✓ (both empty), amount ✓, when ✗
    assert r.answer_accuracy == pytest.approx(3 / 6)
    assert r.per_question["supplier"].f1 == 1.0
    assert r.per_question["when"].precision == 0.0 and r.per_question["when"].recall == 0.0
    assert r.value_accuracy == {"money_rub": 0.0, "organization": 1.0, "time_expression": 0.0}
    assert r.n_calls == 2


def test_answering_nothing_gets_zero_f1_despite_high_accuracy() -> None:
    calls = [make_labelled(("AGENT", "?"), ("CLIENT", "Весной."), call_id=f"c{i}") for i in range(9)]
    calls.append(
        make_labelled(("AGENT", "?"), ("CLIENT", "Весной."), call_id="x", answers={"when": (1, "Весной", None)})
    )
    scorer = AnswerScorer(Q)
    for c in calls:
        scorer.add(c, [])
    r = scorer.result()
    assert r.answer_f1 == 0.0
    assert r.answer_accuracy > 0.95
