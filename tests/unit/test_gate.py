"""The gate's rule, without a registry: better overall and no question drops by more than 2 points."""

from __future__ import annotations

from evaluation.gate import decide, gate_markdown
from evaluation.harness import EvaluationSummary
from evaluation.metrics import QuestionMetrics


def _summary(f1: float, per: dict[str, float]) -> EvaluationSummary:
    q = {
        k: QuestionMetrics(
            n_gold=1,
            n_pred=1,
            n_match=1,
            precision=v,
            recall=v,
            f1=v,
            accuracy=v,
            span_em=v,
            span_f1=v,
            value_accuracy=None,
        )
        for k, v in per.items()
    }
    return EvaluationSummary(
        n_calls=10, answer_f1=f1, answer_precision=f1, answer_recall=f1, answer_accuracy=f1, span_em=0, span_f1=0,
        value_accuracy={}, per_question=q, model="m", questionnaire="q", data=[], dataset_hash="h",
        seconds_per_call=0.0,
    )  # fmt: skip


def test_better_everywhere_is_promoted():
    ok, reason, drops = decide("answers", _summary(0.8, {"a": 0.8, "b": 0.8}), _summary(0.7, {"a": 0.7, "b": 0.7}))
    assert ok and "0.800 > 0.700" in reason and drops == {"a": -0.1, "b": -0.1}


def test_a_question_dropping_more_than_two_points_refuses():
    ok, reason, _ = decide("answers", _summary(0.8, {"a": 0.97, "b": 0.67}), _summary(0.7, {"a": 0.7, "b": 0.7}))
    assert not ok and "b drops 3.0 points" in reason
    ok, _, _ = decide("answers", _summary(0.8, {"a": 0.97, "b": 0.685}), _summary(0.7, {"a": 0.7, "b": 0.7}))
    assert ok  # 1.5 points is within the allowance


def test_not_better_overall_refuses_and_first_model_is_promoted():
    ok, reason, _ = decide("answers", _summary(0.7, {"a": 0.7}), _summary(0.7, {"a": 0.7}))
    assert not ok and "not better" in reason
    ok, reason, _ = decide("calltype", _summary(0.1, {}), None)
    assert ok and "no champion yet" in reason


def test_markdown_names_the_verdict():
    from evaluation.gate import GateDecision

    d = GateDecision(task="answers", candidate="callqa-answers/2", champion="callqa-answers/1", promoted=False,
                     reason="x", candidate_score=0.5, champion_score=0.6, metric="answer_f1",
                     per_item_drops={"a": 0.1}, held_out_calls=3)  # fmt: skip
    md = gate_markdown(d)
    assert "**refused**" in md and "| a | +10.0 |" in md
