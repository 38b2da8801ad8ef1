"""A call prepared once for understanding: tokens, sentences, clauses and typed mentions per turn."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import razdel

from callqa.schemas import Call, Speaker
from callqa.text.dates import TimeMention, find_time_expressions
from callqa.text.lexicon import Lexicon
from callqa.text.numbers import MoneyMention, call_scale, find_money
from callqa.text.tokens import Token, tokenize

# Commas do not break: one thought ("Мы у Севзапкабеля берём, они нам и возят") is scored whole.
_CLAUSE_BREAK = frozenset({";", ":", "—", "–", "…", "...", "(", ")"})
_SENTENCE_END = re.compile(r"[.!?…]")
_PUNCTUATED = re.compile(r"[.,!?;:—…]")
_MIN_UNPUNCTUATED_CLAUSE = 3
_MODALS = frozenset({"планировать", "хотеть", "собираться", "думать", "мочь", "успеть", "рассчитывать"})


@dataclass(slots=True)
class Clause:
    """A stretch of one turn between punctuation (or discourse markers in raw ASR text)."""

    turn: int
    index: int  # position in the turn's clause list
    sentence: int
    tokens: list[Token]
    content: list[str]  # content lemmas (stopwords and punctuation dropped)
    is_question: bool
    tense: str | None = None  # "past" or "future" when the verbs say so
    chunk_tenses: list[tuple[int, int, str | None]] = field(default_factory=list)  # comma-separated parts

    def tense_at(self, start: int, end: int) -> str | None:
        """The tense of the comma-separated part holding [start, end), else of the whole clause."""
        for a, b, tense in self.chunk_tenses:
            if a < end and start < b and tense:
                return tense
        return self.tense

    def past_at(self, start: int, end: int) -> bool:
        """Whether the comma-separated part holding [start, end) itself speaks of the past.

        Stricter than ``tense_at``: a part without a past verb or marker of its own is not past,
        whatever the rest of the clause says. "С Сименсом раньше работали, через Приводсервис
        берём": only Сименс is past; "Одно от Мебельного стиля, мы у них и в прошлый раз брали":
        nothing in the first part is."""
        for a, b, tense in self.chunk_tenses:
            if a < end and start < b:
                return tense == "past"
        return self.tense == "past"

    @property
    def lemmas(self) -> set[str]:
        return {t.lemma for t in self.tokens if t.is_word}

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end

    def words(self) -> list[Token]:
        return [t for t in self.tokens if t.is_word]


@dataclass(slots=True)
class TurnDoc:
    index: int
    speaker: Speaker
    text: str
    tokens: list[Token]
    sentences: list[tuple[int, int]]  # char spans
    clauses: list[Clause] = field(default_factory=list)
    money: list[MoneyMention] = field(default_factory=list)
    times: list[TimeMention] = field(default_factory=list)
    punctuated: bool = True

    def sentence_span(self, start: int, end: int) -> tuple[int, int]:
        """The char span of the sentences that a span [start, end) touches."""
        touching = [s for s in self.sentences if s[0] < end and s[1] > start] or [(start, end)]
        return touching[0][0], touching[-1][1]


def _content(tokens: list[Token], lexicon: Lexicon) -> list[str]:
    return [
        t.lemma for t in tokens if t.is_word and t.lemma not in lexicon.stopwords and t.norm not in lexicon.stopwords
    ]


def clause_tense(tokens: list[Token], lexicon: Lexicon) -> str | None:
    """ "past" when the clause speaks of the past only, "future" of plans; None otherwise."""
    past = future = False
    for t in tokens:
        if t.pos == "VERB":
            # "хотел успеть к июню": a past-tense modal still speaks of a plan
            if t.lemma in _MODALS or "futr" in t.grammemes:
                future = True
            elif "past" in t.grammemes:
                past = True
        elif t.lemma in ("нужный", "надо", "нужно") or t.lemma in lexicon.future_markers:
            future = True
        elif t.lemma in lexicon.past_markers:
            past = True
    if past and not future:
        return "past"
    if future and not past:
        return "future"
    return None


def _chunk_tenses(tokens: list[Token], lexicon: Lexicon) -> list[tuple[int, int, str | None]]:
    chunks: list[list[Token]] = [[]]
    for t in tokens:
        if t.text == ",":
            chunks.append([])
        else:
            chunks[-1].append(t)
    return [(c[0].start, c[-1].end, clause_tense(c, lexicon)) for c in chunks if c]


def _split_clauses(turn: TurnDoc, lexicon: Lexicon) -> list[Clause]:
    clauses: list[Clause] = []
    for s_idx, (s_start, s_end) in enumerate(turn.sentences):
        sent_tokens = [t for t in turn.tokens if t.start >= s_start and t.end <= s_end]
        is_question = turn.text[s_start:s_end].rstrip().endswith("?")
        current: list[Token] = []

        def flush(current: list[Token] = current, s_idx: int = s_idx, is_question: bool = is_question) -> None:
            words = [t for t in current if t.is_word]
            if words:
                while current and not current[0].is_word:
                    current.pop(0)
                while current and not current[-1].is_word:
                    current.pop()
                clauses.append(
                    Clause(
                        turn=turn.index,
                        index=len(clauses),
                        sentence=s_idx,
                        tokens=list(current),
                        content=_content(current, lexicon),
                        is_question=is_question,
                        tense=clause_tense(current, lexicon),
                        chunk_tenses=_chunk_tenses(current, lexicon),
                    )
                )
            current.clear()

        for tok in sent_tokens:
            if tok.text in _CLAUSE_BREAK:
                flush()
                continue
            if (
                not turn.punctuated
                and tok.norm in lexicon.clause_markers
                and sum(t.is_word for t in current) >= _MIN_UNPUNCTUATED_CLAUSE
            ):
                flush()
            current.append(tok)
        flush()
    return clauses


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = [(s.start, s.stop) for s in razdel.sentenize(text)]
    return spans or [(0, len(text))]


@dataclass(slots=True)
class CallDocument:
    call: Call
    turns: list[TurnDoc]
    money_scale: int
    # encoder states of the call by encoder name: computed once, read by every model on that encoder
    encodings: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, call: Call, lexicon: Lexicon) -> CallDocument:
        """Tokenise, split and tag every turn of ``call`` once."""
        scale = call_scale(" ".join(t.text for t in call.turns))
        turns = []
        for i, turn in enumerate(call.turns):
            doc = TurnDoc(
                index=i,
                speaker=turn.speaker,
                text=turn.text,
                tokens=tokenize(turn.text),
                sentences=_sentences(turn.text),
                punctuated=bool(_PUNCTUATED.search(turn.text)),
            )
            doc.clauses = _split_clauses(doc, lexicon)
            doc.money = find_money(doc.tokens, scale)
            doc.times = find_time_expressions(turn.text)
            turns.append(doc)
        return cls(call=call, turns=turns, money_scale=scale)

    def previous_agent_turn(self, index: int) -> int | None:
        """The last AGENT turn before turn ``index``."""
        for k in range(index - 1, -1, -1):
            if self.turns[k].speaker == Speaker.AGENT:
                return k
        return None
