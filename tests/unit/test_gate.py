"""The gate's rule, without a registry: a paired bootstrap over held-out calls.

The candidate is promoted only when it is better in ≥ 95% of resamples, and refused when some
question (error id) is more than 2 points worse in ≥ 95% of them. The per-call scores are built
here: every call has a gold answer to every question and both models answer every question, so
a question's F1 is the share of calls where the model got it right.
"""

from __future__ import annotations

import numpy as np
import pytest

from callqa.schemas import Answer, ErrorId, Questionnaire
from evaluation.gate import (
    MAX_DROP,
    CallCounts,
    GateDecision,
    GateRule,
    call_counts,
    constant_baseline,
    decide,
    gate_markdown,
    task_scores,
)
from evaluation.harness import Evaluation, EvaluationSummary
from evaluation.metrics import AnswerScorer, ClassificationScorer, LabelMetrics, QuestionMetrics
from tests.builders import make_labelled

QUESTIONS = ("a", "b", "c", "d")


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


def _right(rows: np.ndarray, items: tuple[str, ...] = QUESTIONS) -> CallCounts:
    """Answers: every call × question has a gold answer and a prediction; ``rows`` says which match."""
    right = np.asarray(rows, dtype=np.int64)
    ones = np.ones_like(right)
    return CallCounts(tuple(f"call-{i}" for i in range(len(right))), items, ones, ones, right)


def _summary_of(task: str, counts: CallCounts) -> EvaluationSummary:
    overall, items = task_scores(task, counts.gold.sum(0), counts.pred.sum(0), counts.match.sum(0))
    per = dict(zip(counts.items, items.tolist(), strict=False))
    if task == "answers":
        return _summary(float(overall), per)
    if task == "errors":
        per_error = {
            e: LabelMetrics(n_gold=0, n_pred=0, n_match=0, precision=f, recall=f, f1=f) for e, f in per.items()
        }
        return _summary(0.0, {}).model_copy(update={"error_macro_f1": float(overall), "per_error": per_error})
    return _summary(0.0, {}).model_copy(update={"call_type_accuracy": float(overall)})


def _decide(candidate: CallCounts, champion: CallCounts, task: str = "answers", **rule: float):
    return decide(
        task, _summary_of(task, candidate), _summary_of(task, champion), candidate, champion, GateRule(**rule)
    )


def _champion(n: int) -> np.ndarray:
    """A champion right on 60% of the cells, spread evenly over calls and questions."""
    i, j = np.indices((n, len(QUESTIONS)))
    return (3 * i + j) % 5 < 3


def _fix(right: np.ndarray, k: int, questions: tuple[int, ...]) -> np.ndarray:
    """Turn the first ``k`` wrong cells of ``questions`` into right ones, one call after another."""
    out = right.copy()
    cells = [(i, j) for i in range(len(out)) for j in questions if not out[i, j]][:k]
    assert len(cells) == k
    for i, j in cells:
        out[i, j] = True
    return out


def _break(right: np.ndarray, k: int, question: int) -> np.ndarray:
    """Turn the first ``k`` right answers to ``question`` into wrong ones."""
    out = right.copy()
    calls = np.flatnonzero(out[:, question])[:k]
    assert len(calls) == k
    out[calls, question] = False
    return out


def test_clearly_better_candidate_is_promoted_though_one_question_loses_one_answer():
    champ = _champion(40)
    cand = _break(_fix(champ, 16, (0, 1, 2)), 1, 3)  # +16 answers over a, b, c; d loses one of 40
    v = _decide(_right(cand), _right(champ))
    assert v.per_item_drops["d"] == pytest.approx(0.025)  # more than the 2 points the old rule allowed
    assert v.promoted, v.reason
    assert v.bootstrap.p_better >= 0.95 and v.bootstrap.interval[0] > 0
    assert v.bootstrap.observed_diff == pytest.approx(15 / 160)
    assert v.bootstrap.per_item_p_worse["d"] < 0.95  # one answer is a wobble, not a regression


def test_candidate_equal_to_the_champion_up_to_noise_is_refused():
    champ = _champion(60)
    cand = _break(_fix(champ, 2, (0, 1)), 1, 2)  # one answer more in all: higher, by noise
    v = _decide(_right(cand), _right(champ))
    assert v.bootstrap.observed_diff > 0 and max(v.per_item_drops.values()) < MAX_DROP  # the old rule promoted
    assert not v.promoted
    assert "not better with confidence" in v.reason
    assert 0.3 < v.bootstrap.p_better < 0.95  # not worse either: a coin toss


@pytest.mark.parametrize("seed", range(5))
def test_worse_or_identical_candidate_is_never_promoted(seed: int):
    champ = _champion(20)
    for cand in (_break(champ, 3, 0), _break(_break(champ, 6, 1), 4, 2), champ):
        v = _decide(_right(cand), _right(champ), seed=seed, confidence=0.6)
        assert not v.promoted, v.reason
        assert v.bootstrap.p_better == 0.0  # a tie is not a win


def test_better_overall_but_one_question_clearly_worse_is_refused_naming_it():
    champ = _champion(40)
    cand = _break(_fix(champ, 40, (0, 1, 2)), 8, 3)  # +40 answers over a, b, c; d loses 8 of its 24
    v = _decide(_right(cand), _right(champ))
    assert v.bootstrap.p_better >= 0.95  # better overall, with confidence
    assert not v.promoted
    assert v.bootstrap.worst_item == "d" and v.bootstrap.worst_item_p_worse >= 0.95
    assert "but d is worse" in v.reason


def test_the_decision_is_reproducible_and_the_seed_is_what_fixes_it():
    champ = _champion(60)
    cand, champ_counts = _right(_break(_fix(champ, 4, (0, 1)), 1, 2)), _right(champ)
    first = _decide(cand, champ_counts, seed=7)
    again = _decide(cand, champ_counts, seed=7)
    other = _decide(cand, champ_counts, seed=8)
    assert (first.promoted, first.reason, first.bootstrap) == (again.promoted, again.reason, again.bootstrap)
    assert other.bootstrap.interval != first.bootstrap.interval


def test_a_candidate_that_never_loses_a_call_is_judged_on_its_wins_alone():
    """Paired: the calls both models get right or wrong alike cancel out, whatever their spread; four
    calls won and none lost is better in 1 - (1 - 4/60)**60 ≈ 98% of resamples (unpaired: far fewer)."""
    champ = _champion(60)
    v = _decide(_right(_fix(champ, 4, (0,))), _right(champ))
    assert v.bootstrap.p_better == pytest.approx(1 - (1 - 4 / 60) ** 60, abs=0.01)
    assert v.promoted, v.reason


def test_confidence_is_configurable():
    champ = _champion(60)
    cand, champ_counts = _right(_break(_fix(champ, 4, (0, 1)), 1, 2)), _right(champ)
    strict, lenient = _decide(cand, champ_counts), _decide(cand, champ_counts, confidence=0.6)
    assert 0.6 <= strict.bootstrap.p_better < 0.95
    assert not strict.promoted and lenient.promoted


def test_the_models_are_paired_call_by_call():
    """The same calls in another order give the same decision; other calls are refused outright."""
    champ = _champion(40)
    cand = _right(_break(_fix(champ, 16, (0, 1, 2)), 1, 3))
    champ_counts = _right(champ)
    order = np.arange(40)[::-1]
    shuffled = CallCounts(
        tuple(np.array(champ_counts.call_ids)[order]), champ_counts.items, *(x[order] for x in (champ_counts.gold,
        champ_counts.pred, champ_counts.match))
    )  # fmt: skip
    assert _decide(cand, shuffled).bootstrap == _decide(cand, champ_counts).bootstrap
    other = CallCounts(tuple(f"x-{i}" for i in range(40)), QUESTIONS, champ_counts.gold, champ_counts.pred,
                       champ_counts.match)  # fmt: skip
    with pytest.raises(ValueError, match="same calls"):
        _decide(cand, other)
    with pytest.raises(ValueError, match="summary"):  # counts that are not the summary's own
        decide("answers", _summary(0.9, {}), _summary_of("answers", champ_counts), cand, champ_counts)


def test_errors_one_error_clearly_worse_refuses_and_call_type_uses_accuracy():
    n, ids = 40, ("no_next_step", "filler_words")
    gold = np.zeros((n, 2), dtype=np.int64)
    gold[::2, 0] = gold[1::2, 1] = 1  # each call has one of the two errors
    champ = CallCounts(tuple(map(str, range(n))), ids, gold, gold.copy(), gold.copy())  # perfect
    pred = gold.copy()
    pred[:, 1] = 0  # filler_words is never flagged any more
    cand = CallCounts(champ.call_ids, ids, gold, pred, gold * pred)
    v = _decide(champ, cand, task="errors")  # the champion as the candidate: clearly better
    assert v.promoted and v.bootstrap.p_better == 1.0
    v = _decide(cand, champ, task="errors")
    assert not v.promoted and v.bootstrap.worst_item == "filler_words"

    right = np.zeros((n, 1), dtype=np.int64)
    right[: n // 2] = 1
    better = right.copy()
    better[n // 2 : n // 2 + 12] = 1
    ones = np.ones_like(right)
    cand, champ = (CallCounts(champ.call_ids, ("call_type",), ones, ones, r) for r in (better, right))
    v = _decide(cand, champ, task="calltype")
    assert v.promoted and v.bootstrap.observed_diff == pytest.approx(0.3) and v.bootstrap.worst_item is None


def test_per_call_counts_add_up_to_the_scorers_metrics(questionnaire: Questionnaire, supplier_call):
    """The bootstrap's metric on all calls is exactly the harness's (answers, errors, call type)."""
    other = supplier_call.model_copy(update={"call_id": "fixture-2", "answers": {}})

    def said(question: str, text: str) -> Answer:
        return Answer(question_id=question, text=text, turn=3, char_start=0, char_end=len(text), confidence=1.0,
                      evidence=text)  # fmt: skip

    scorer = AnswerScorer(questionnaire)
    right, wrong = said("current_supplier", "берём у Подшипник-Центра"), said("decision_maker", "бухгалтер")
    scorer.add(supplier_call, [right, wrong])  # one match, one wrong answer, one missed
    scorer.add(other, [right])  # an answer where there is none
    classes = ClassificationScorer(e.value for e in ErrorId)
    calls = [
        make_labelled(("AGENT", "Алло"), call_id="x", errors=["no_introduction", "no_next_step"], call_type="spam"),
        make_labelled(("AGENT", "Алло"), call_id="y", errors=[], call_type="spam"),
        make_labelled(("AGENT", "Алло"), call_id="z", errors=["filler_words"]),
    ]
    classes.add(calls[0], ["no_introduction", "filler_words"], "spam")
    classes.add(calls[1], [], "cold_call")
    classes.add(calls[2], ["filler_words"], "spam")
    summary = EvaluationSummary(
        **scorer.result().model_dump(), model="m", questionnaire="q", data=[], dataset_hash="h", seconds_per_call=0.0,
        **classes.result().model_dump(exclude={"call_type_n"}),
    )  # fmt: skip
    evaluation = Evaluation(summary=summary, outcomes=scorer.outcomes, results=[], classified=classes.calls)
    assert 0 < summary.answer_f1 < 1 and 0 < summary.error_macro_f1 < 1 and summary.call_type_accuracy == 0.5
    for task, overall, per in (
        ("answers", summary.answer_f1, {q: m.f1 for q, m in summary.per_question.items()}),
        ("errors", summary.error_macro_f1, {e: m.f1 for e, m in summary.per_error.items()}),
        ("calltype", summary.call_type_accuracy, {}),
    ):
        counts = call_counts(task, evaluation)
        assert len(counts.call_ids) == (2 if task == "answers" else 3)
        got, items = task_scores(task, counts.gold.sum(0), counts.pred.sum(0), counts.match.sum(0))
        assert float(got) == pytest.approx(overall)
        if per:
            assert dict(zip(counts.items, items.tolist(), strict=True)) == pytest.approx(per)


def test_not_better_overall_refuses_and_first_model_is_promoted():
    champ = _right(_champion(20))
    v = _decide(champ, champ)
    assert not v.promoted and "not better" in v.reason
    v = decide("calltype", _summary(0.1, {}), None)
    assert v.promoted and "no champion yet" in v.reason and v.bootstrap is None


def test_markdown_names_the_verdict():
    d = GateDecision(task="answers", candidate="callqa-answers/2", champion="callqa-answers/1", promoted=False,
                     reason="x", candidate_score=0.5, champion_score=0.6, metric="answer_f1",
                     per_item_drops={"a": 0.1}, held_out_calls=3)  # fmt: skip
    md = gate_markdown(d)
    assert "**refused**" in md and "| a | +10.0 |" in md


def test_markdown_shows_the_bootstrap():
    champ = _champion(40)
    v = _decide(_right(_break(_fix(champ, 40, (0, 1, 2)), 8, 3)), _right(champ))
    d = GateDecision(task="answers", candidate="callqa-answers/2", champion="callqa-answers/1", promoted=v.promoted,
                     reason=v.reason, candidate_score=0.7, champion_score=0.6, metric="answer_f1",
                     per_item_drops=v.per_item_drops, held_out_calls=40, bootstrap=v.bootstrap)  # fmt: skip
    md = gate_markdown(d)
    assert "2000 resamples" in md and "95% interval [+" in md
    assert f"better in {100 * v.bootstrap.p_better:.1f}% of resamples" in md
    assert "Least safe item: d" in md and "| d | +20.0 | 1.000 |" in md
    assert GateDecision.model_validate_json(d.model_dump_json()) == d  # the --json output round-trips


def _classified_evaluation(calls, predicted: dict[str, tuple[list[str], str]]) -> Evaluation:
    scorer = ClassificationScorer(e.value for e in ErrorId)
    for call in calls:
        errors, kind = predicted[call.call_id]
        scorer.add(call, errors, kind)
    fields = _summary(0.0, {}).model_dump() | scorer.result().model_dump(exclude={"call_type_n"})
    summary = EvaluationSummary(**fields)
    return Evaluation(summary=summary, outcomes=[], results=[], classified=scorer.calls)


def test_a_first_classifier_must_beat_the_best_constant_answer():
    """No champion yet: the majority call type (per error id, the majority flag) stands in for one."""
    kinds = ["cold_call"] * 24 + ["follow_up"] * 10 + ["spam"] * 6
    calls = [
        make_labelled(("AGENT", "Алло"), call_id=f"c{i}", call_type=k, errors=["filler_words"] if i % 3 else [])
        for i, k in enumerate(kinds)
    ]
    lazy = _classified_evaluation(calls, {c.call_id: (["filler_words"], "cold_call") for c in calls})
    label, base = constant_baseline("calltype", lazy, calls)
    assert label == "always cold_call"
    assert float(task_scores("calltype", base.gold.sum(0), base.pred.sum(0), base.match.sum(0))[0]) == 0.6
    v = decide("calltype", lazy.summary, None, call_counts("calltype", lazy), base)
    assert not v.promoted and "not better" in v.reason  # learned nothing: refused, not "no champion yet"
    good = _classified_evaluation(
        calls, {c.call_id: (["filler_words"], str(c.call_type) if i % 8 else "spam") for i, c in enumerate(calls)}
    )
    base = constant_baseline("calltype", good, calls)[1]
    v = decide("calltype", good.summary, None, call_counts("calltype", good), base)
    assert v.promoted and v.bootstrap is not None and v.bootstrap.observed_diff == pytest.approx(0.875 - 0.6)

    label, base = constant_baseline("errors", lazy, calls)
    assert label == "flags filler_words on every call"  # 26 of 40 calls have it
    v = decide("errors", lazy.summary, None, call_counts("errors", lazy), base)
    assert not v.promoted  # identical to the constant: a tie is not better
    exact = _classified_evaluation(calls, {c.call_id: ([str(e) for e in c.errors], "cold_call") for c in calls})
    base = constant_baseline("errors", exact, calls)[1]
    v = decide("errors", exact.summary, None, call_counts("errors", exact), base)
    assert v.promoted
