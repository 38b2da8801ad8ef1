"""Synthetic answer spans take the labelled calls' convention of how much of the turn to quote."""

from __future__ import annotations

from callqa.synthetic import generate_calls, is_synthetic
from tests.builders import make_labelled
from training.answers import prepare
from training.span_style import SpanStyle, restyle, whole_turn_shares, whole_turn_text

PROCESS = "Я собираю предложения. Согласует главный инженер, а подписывает директор."


def _process_call(call_id: str, text: str) -> object:
    return make_labelled(
        ("AGENT", "Как у вас принимается решение?"),
        ("CLIENT", PROCESS),
        answers={"decision_process": (1, text, None)},
        call_id=call_id,
    )


def test_shares_count_answers_quoting_their_whole_turn():
    whole = [_process_call(f"l-{i}", whole_turn_text(PROCESS)) for i in range(3)]
    core = _process_call("l-9", "Согласует главный инженер")
    shares = whole_turn_shares([*whole, core])
    assert shares == {"decision_process": 0.75}
    assert whole_turn_shares(whole[:2]) == {}  # too few answers to say
    assert whole_turn_text("  — Ну, через тендер. ") == "Ну, через тендер"


def test_widening_takes_the_synthetic_share_to_the_labelled_one():
    style = SpanStyle(labelled={"decision_process": 0.8, "next_purchase": 0.0}, synthetic={"decision_process": 0.4})
    assert abs(style.widen["decision_process"] - 2 / 3) < 1e-9
    assert "next_purchase" not in style.widen  # answers are widened, never cut

    synthetic = [_process_call(f"syn-{i:06d}", "Согласует главный инженер") for i in range(300)]
    restyled = restyle(synthetic, SpanStyle({"decision_process": 0.5}, {"decision_process": 0.0}), seed=0)
    share = whole_turn_shares(restyled)["decision_process"]
    assert 0.4 < share < 0.6
    widened = next(c for c in restyled if c.answers["decision_process"].text != "Согласует главный инженер")
    assert widened.answers["decision_process"].text == whole_turn_text(PROCESS)  # still a substring of the turn
    assert restyle(synthetic, SpanStyle({"decision_process": 0.5}, {"decision_process": 0.0}), seed=0) == restyled


def test_training_data_follow_the_labelled_convention(questionnaire):
    labelled = [_process_call(f"l-{i}", whole_turn_text(PROCESS)) for i in range(3)]
    calls = [*generate_calls(40, seed=1), *labelled]
    options = {"labelled_weight": 1, "show_progress": False, "calibration_share": 0.0}
    data = prepare(calls, questionnaire, **options)
    assert data.style is not None and data.style.widen["decision_process"] == 1.0
    synthetic = [c for c in data.train_calls if is_synthetic(c.call_id)]
    assert whole_turn_shares(synthetic, min_answers=1)["decision_process"] == 1.0
    assert {c.call_id: c for c in data.train_calls}["l-0"] == labelled[0]  # labelled calls are never restyled
    plain = prepare(calls, questionnaire, **options, span_style=False)
    assert plain.style is None
    plain_synthetic = [c for c in plain.train_calls if is_synthetic(c.call_id)]
    assert whole_turn_shares(plain_synthetic, min_answers=1)["decision_process"] < 1.0
