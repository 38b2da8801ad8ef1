"""Answer metrics exactly as DESIGN.md §4 defines them.

A predicted answer *matches* the gold answer of the same call and question when its text
overlaps the gold text with token-F1 ≥ 0.5 (lowercased, punctuation stripped; we also fold
ё into е and split hyphenated words, so "где-то" and ASR's "где то" are the same tokens) or
when their normalised values are equal. Precision = matching / non-empty predictions,
recall = matching / gold answers, answer_f1 = their harmonic mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel

from callqa.schemas import Answer, GoldAnswer, LabelledCall, Questionnaire
from callqa.text.tokens import metric_tokens, token_f1
from callqa.understanding.normalize import values_equal

MATCH_F1 = 0.5


def answer_matches(pred: Answer, gold: GoldAnswer) -> bool:
    """The DESIGN.md match rule: token-F1 ≥ 0.5 or equal normalised values."""
    return token_f1(pred.text, gold.text) >= MATCH_F1 or values_equal(pred.value, gold.value)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


class QuestionMetrics(BaseModel):
    n_gold: int
    n_pred: int
    n_match: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    span_em: float
    span_f1: float
    value_accuracy: float | None


class AnswerMetrics(BaseModel):
    n_calls: int
    answer_f1: float
    answer_precision: float
    answer_recall: float
    answer_accuracy: float
    span_em: float
    span_f1: float
    value_accuracy: dict[str, float]
    per_question: dict[str, QuestionMetrics]


@dataclass
class _Tally:
    gold: int = 0
    pred: int = 0
    match: int = 0
    correct: int = 0
    cells: int = 0
    em: float = 0.0
    span_f1: float = 0.0
    value_total: int = 0
    value_ok: int = 0


@dataclass
class Outcome:
    """What happened for one call × question (for reports and error analysis)."""

    call_id: str
    question_id: str
    gold: GoldAnswer | None
    pred: Answer | None
    match: bool
    correct: bool


@dataclass
class AnswerScorer:
    """Accumulates predictions call by call, then reports the metrics."""

    questionnaire: Questionnaire
    tallies: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    value_by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    outcomes: list[Outcome] = field(default_factory=list)
    n_calls: int = 0

    def add(self, call: LabelledCall, predicted: Iterable[Answer]) -> list[Outcome]:
        """Score one call's predictions against its labels."""
        by_q = {a.question_id: a for a in predicted if a.text.strip()}
        self.n_calls += 1
        outcomes = []
        for q in self.questionnaire.questions:
            gold = call.answers.get(q.id)
            pred = by_q.get(q.id)
            t = self.tallies[q.id]
            t.cells += 1
            match = bool(gold and pred and answer_matches(pred, gold))
            t.gold += gold is not None
            t.pred += pred is not None
            t.match += match
            correct = match or (gold is None and pred is None)
            t.correct += correct
            if gold is not None:
                f1 = token_f1(pred.text, gold.text) if pred else 0.0
                t.span_f1 += f1
                t.em += float(bool(pred) and metric_tokens(pred.text) == metric_tokens(gold.text))
                if gold.value is not None:
                    ok = bool(pred) and values_equal(pred.value, gold.value)
                    t.value_total += 1
                    t.value_ok += ok
                    self.value_by_kind[q.kind.value][0] += ok
                    self.value_by_kind[q.kind.value][1] += 1
            outcomes.append(Outcome(call.call_id, q.id, gold, pred, match, correct))
        self.outcomes.extend(outcomes)
        return outcomes

    def result(self) -> AnswerMetrics:
        """Overall (micro-averaged) and per-question metrics."""
        per_question = {}
        total = _Tally()
        for q in self.questionnaire.questions:
            t = self.tallies[q.id]
            p = t.match / t.pred if t.pred else 0.0
            r = t.match / t.gold if t.gold else 0.0
            per_question[q.id] = QuestionMetrics(
                n_gold=t.gold,
                n_pred=t.pred,
                n_match=t.match,
                precision=p,
                recall=r,
                f1=_f1(p, r),
                accuracy=t.correct / t.cells if t.cells else 0.0,
                span_em=t.em / t.gold if t.gold else 0.0,
                span_f1=t.span_f1 / t.gold if t.gold else 0.0,
                value_accuracy=t.value_ok / t.value_total if t.value_total else None,
            )
            for name in ("gold", "pred", "match", "correct", "cells", "em", "span_f1"):
                setattr(total, name, getattr(total, name) + getattr(t, name))
        p = total.match / total.pred if total.pred else 0.0
        r = total.match / total.gold if total.gold else 0.0
        return AnswerMetrics(
            n_calls=self.n_calls,
            answer_f1=_f1(p, r),
            answer_precision=p,
            answer_recall=r,
            answer_accuracy=total.correct / total.cells if total.cells else 0.0,
            span_em=total.em / total.gold if total.gold else 0.0,
            span_f1=total.span_f1 / total.gold if total.gold else 0.0,
            value_accuracy={k: ok / n for k, (ok, n) in sorted(self.value_by_kind.items()) if n},
            per_question=per_question,
        )


class LabelMetrics(BaseModel):
    n_gold: int
    n_pred: int
    n_match: int
    precision: float
    recall: float
    f1: float


class ClassificationMetrics(BaseModel):
    """Manager errors (multi-label, macro-F1 over the error ids) and call type (accuracy)."""

    error_macro_f1: float | None = None
    per_error: dict[str, LabelMetrics] | None = None
    call_type_accuracy: float | None = None
    call_type_n: int = 0


@dataclass
class Classified:
    """What the classifiers got for one call (paired comparisons resample these, e.g. the gate)."""

    call_id: str
    gold_errors: frozenset[str]
    pred_errors: frozenset[str] | None  # None: no error model ran
    type_right: bool | None  # None: no call-type prediction or no gold call type


class ClassificationScorer:
    """Accumulates predicted vs gold errors and call types call by call."""

    def __init__(self, error_ids: Iterable[str]) -> None:
        self.error_ids = list(error_ids)
        self.errors: dict[str, _Tally] = {e: _Tally() for e in self.error_ids}
        self.scored_errors = False
        self.type_right = 0
        self.type_n = 0
        self.calls: list[Classified] = []

    def add(self, call: LabelledCall, errors: Iterable[str] | None, call_type: str | None) -> None:
        gold = frozenset(str(e) for e in call.errors)
        pred = None if errors is None else frozenset(errors)
        if pred is not None:
            self.scored_errors = True
            for e, tally in self.errors.items():
                tally.gold += e in gold
                tally.pred += e in pred
                tally.match += e in gold and e in pred
        right = None
        if call_type is not None and call.call_type is not None:
            right = call_type == call.call_type
            self.type_n += 1
            self.type_right += right
        self.calls.append(Classified(call.call_id, gold, pred, right))

    def result(self) -> ClassificationMetrics:
        per_error = None
        macro = None
        if self.scored_errors:
            per_error = {}
            for e, t in self.errors.items():
                p = t.match / t.pred if t.pred else float(t.gold == 0)
                r = t.match / t.gold if t.gold else float(t.pred == 0)
                per_error[e] = LabelMetrics(
                    n_gold=t.gold, n_pred=t.pred, n_match=t.match, precision=p, recall=r, f1=_f1(p, r)
                )
            macro = sum(m.f1 for m in per_error.values()) / len(per_error)
        return ClassificationMetrics(
            error_macro_f1=macro,
            per_error=per_error,
            call_type_accuracy=self.type_right / self.type_n if self.type_n else None,
            call_type_n=self.type_n,
        )
