"""Synthetic answer spans restyled to the labelled calls' convention: how much of the turn annotators quote.

Annotators delimit answers per question in their own way. For "how do you decide" or "on what
conditions" they quote the client's whole explanation, several sentences long; for a date or
an amount, the phrase. The generator's templates mark the core phrase, so a model trained on
them cuts process answers short, and the answer metric (token F1 ≥ 0.5) counts a third of such
an answer as a miss. ``SpanStyle`` measures, per question, the share of labelled answers that
quote their whole turn, and ``restyle`` widens synthetic answers to their whole turn just often
enough that the synthetic share matches. Measured on the labelled calls a run trains on, never
on the calls it is tested on.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from callqa.schemas import LabelledCall
from callqa.text.tokens import token_f1

WHOLE_TURN_F1 = 0.8  # an answer "quotes its turn" when it overlaps the whole turn this much
MIN_ANSWERS = 3  # a question's style is measured from at least this many labelled answers
_WORD = re.compile(r"\w")


def quotes_turn(call: LabelledCall, question_id: str) -> bool | None:
    """Whether the call's answer to the question quotes its whole turn (None: no answer)."""
    gold = call.answers.get(question_id)
    if gold is None or gold.turn >= len(call.turns):
        return None
    return token_f1(call.turns[gold.turn].text, gold.text) >= WHOLE_TURN_F1


def whole_turn_shares(calls: Sequence[LabelledCall], min_answers: int = MIN_ANSWERS) -> dict[str, float]:
    """Per question with at least ``min_answers`` answers: the share that quote their whole turn."""
    quoted: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for call in calls:
        for qid in call.answers:
            whole = quotes_turn(call, qid)
            if whole is not None:
                answered[qid] += 1
                quoted[qid] += whole
    return {qid: quoted[qid] / n for qid, n in answered.items() if n >= min_answers}


@dataclass(frozen=True)
class SpanStyle:
    """How often to widen a synthetic answer of each question to its whole turn."""

    labelled: dict[str, float]  # share quoting the whole turn in the labelled calls
    synthetic: dict[str, float]  # the same share in the synthetic calls, before restyling

    @property
    def widen(self) -> dict[str, float]:
        """Per question: the probability that takes the synthetic share to the labelled one."""
        out = {}
        for qid, target in self.labelled.items():
            base = self.synthetic.get(qid, 0.0)
            if target > base and base < 1.0:
                out[qid] = (target - base) / (1.0 - base)
        return out

    @classmethod
    def measure(cls, labelled: Sequence[LabelledCall], synthetic: Sequence[LabelledCall]) -> SpanStyle:
        return cls(whole_turn_shares(labelled), whole_turn_shares(synthetic))


def whole_turn_text(text: str) -> str:
    """The turn from its first to its last word character (no closing punctuation)."""
    chars = [m.start() for m in _WORD.finditer(text)]
    return text[chars[0] : chars[-1] + 1] if chars else text


def restyle(calls: Sequence[LabelledCall], style: SpanStyle, seed: int) -> list[LabelledCall]:
    """``calls`` with answers widened to their whole turn at ``style.widen`` rates (stable per call and seed)."""
    widen = style.widen
    if not widen:
        return list(calls)
    out = []
    for call in calls:
        rng = random.Random(f"{seed}:{call.call_id}:span-style")
        answers = dict(call.answers)
        for qid, gold in call.answers.items():
            rate = widen.get(qid, 0.0)
            if gold is None or not rate or quotes_turn(call, qid) or rng.random() >= rate:
                continue
            answers[qid] = gold.model_copy(update={"text": whole_turn_text(call.turns[gold.turn].text)})
        out.append(call.model_copy(update={"answers": answers}) if answers != call.answers else call)
    return out
