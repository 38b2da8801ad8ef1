"""Zero-shot answer extraction: any questionnaire, no labelled examples of it.

For each question the extractor looks for (1) where the agent asks it — lemma and navec
similarity of agent sentences to the question text and its paraphrases — and (2) client
clauses that carry what the question's ``kind`` needs (a money amount, a date, a company
name, a role...) or its cue words. A client turn's score is its best run of clauses plus
the anchor of the agent turn before it; the best turn above the kind's threshold gives the
answer, its value normalised by kind. Answers the client volunteers without being asked are
found through cues and typed mentions alone.

With a pretrained text encoder (``encoder``) both halves also listen to meaning, not only to
words: an agent sentence asks a question as much as its ``query:`` embedding is close to the
question's, and a client clause answers it as much as its ``passage:`` embedding is relevant to
the question (what e5 was trained for: questions against passages that answer them). That is
what lets a questionnaire with bare question texts work on phrasing nobody wrote cues for.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from callqa.schemas import Answer, AnswerValue, Call, Question, QuestionKind, Questionnaire, Speaker, Turn
from callqa.settings import get_settings
from callqa.text.dates import TimeMention
from callqa.text.embeddings import WordVectors, load_word_vectors
from callqa.text.lexicon import Lexicon, load_lexicon
from callqa.text.numbers import find_numbers
from callqa.text.tokens import Token, tokenize
from callqa.understanding.calltype import has_phrase, is_vendor_pitch
from callqa.understanding.document import CallDocument, Clause, TurnDoc, clause_tense
from callqa.understanding.normalize import (
    KIND_NEEDS_ENTITY,
    number_value,
    organization_spans,
    organization_value,
    person_name_after,
    role_spans,
    role_value,
    time_value,
    yes_no_value,
)
from callqa.yamlio import load_model

if TYPE_CHECKING:  # the encoder (transformers, onnxruntime) loads only when one is given
    from callqa.encoder.runtime import TextEncoder


class AnswerExtractor(Protocol):
    """Anything that answers a questionnaire from a call transcript."""

    name: str
    questionnaire: Questionnaire

    def extract(self, call: Call, document: CallDocument | None = None) -> list[Answer]:
        """Answers found in ``call`` (``document``: the call already prepared, if at hand)."""
        ...


class KindWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: float
    weak_entity: float
    anchor_base: float
    anchor: float
    cue: float
    threshold: float
    requires_entity: bool


class SemanticWeights(BaseModel):
    """How the encoder's similarities count (used only when the extractor has an encoder).

    A cosine is read relative to the same text's cosines with the other questions (minus their
    median: e5's cosines of unrelated Russian texts all sit around 0.75-0.8, so only how much
    closer a sentence is to this question than to the rest says anything), then becomes
    ``clip((c - floor) / span, 0, cap)``. Chosen on the tune half of the dev calls with the
    default questionnaire and with its bare-text version (no paraphrases, no cues): F1 0.707 →
    0.72 and 0.39 → 0.50 there (``docs/benchmarks.md``).
    """

    model_config = ConfigDict(extra="forbid")

    relative: bool = True
    source: Literal["context", "standalone"] = "standalone"
    """Sentence and clause vectors: pooled from the call's one encoder pass (free), or each embedded on its
    own (closer to how e5 was trained; an encoder pass per sentence, ~4 ms each on 2 cores)."""
    ask_floor: float = 0.0
    ask_span: float = 0.04
    ask_weight: float = 1.0
    clause_floor: float = 0.0
    clause_span: float = 0.04
    clause_weight: float = 1.0
    cap: float = 1.5


class ZeroShotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    similarity_floor: float
    ask_sentence_weight: float
    statement_sentence_weight: float
    previous_exchange_decay: float
    clause_cost: float
    question_penalty: float
    dodge_penalty: float
    tense_penalty: float
    secondary_entity: float
    appointment_penalty: float
    cue_from_question_weight: float
    max_run_clauses: int
    confidence_scale: float
    topic_threshold: float
    kinds: dict[QuestionKind, KindWeights]
    semantic: SemanticWeights = SemanticWeights()


def load_zero_shot_config(path: str | Path | None = None) -> ZeroShotConfig:
    """The extractor's weights from YAML (the packaged default when ``path`` is None)."""
    return load_model(path or get_settings().zero_shot_config, ZeroShotConfig)


def content_lemmas(text: str, lexicon: Lexicon) -> list[str]:
    """Lemmas of a text's topic words (stopwords and punctuation dropped; interrogatives kept)."""
    return [
        t.lemma
        for t in tokenize(text)
        if t.is_word and (t.lemma in lexicon.interrogatives or t.lemma not in lexicon.stopwords)
    ]


class SoftProfile:
    """Weighted lemmas; a word matches exactly or, more weakly, through navec similarity."""

    def __init__(self, weights: dict[str, float], vectors: WordVectors, floor: float) -> None:
        self.weights = weights
        self._keys = list(weights)
        self._vectors = vectors
        self._floor = floor
        self._cache: dict[str, float] = {}

    def match(self, lemma: str) -> float:
        if lemma in self.weights:
            return self.weights[lemma]
        if lemma not in self._cache:
            if not self._keys:
                self._cache[lemma] = 0.0
            else:
                sims = self._vectors.similarity([lemma], self._keys)[0]
                best = 0.0
                for key, sim in zip(self._keys, sims, strict=True):
                    if sim > self._floor:
                        best = max(best, self.weights[key] * (sim - self._floor) / (1 - self._floor))
                self._cache[lemma] = best
        return self._cache[lemma]

    def score(self, lemmas: list[str], exact: set[str] | frozenset[str] = frozenset()) -> float:
        """Soft matches of topic lemmas, plus exact matches of any other word (cue words may be
        function words: "если", "чтобы")."""
        topic = set(lemmas)
        return sum(self.match(lemma) for lemma in topic) + sum(self.weights.get(lemma, 0.0) for lemma in exact - topic)


@dataclass
class QuestionProfile:
    question: Question
    ask: SoftProfile
    cues: SoftProfile
    orientation: str | None = None  # "past" (last purchase) or "future" (next purchase)
    secondary: tuple[QuestionKind, ...] = ()  # other typed mentions the question's words ask for

    @property
    def kind(self) -> QuestionKind:
        return self.question.kind


def build_profiles(
    questionnaire: Questionnaire, lexicon: Lexicon, vectors: WordVectors, config: ZeroShotConfig
) -> list[QuestionProfile]:
    """Per question: what asking it sounds like, and what answering it sounds like.

    Lemmas are weighted by how specific they are to one question of the questionnaire
    (an IDF over questions), so words every question shares decide nothing.
    """
    asks = []
    cues = []
    for q in questionnaire.questions:
        ask = Counter(content_lemmas(q.text, lexicon))
        for p in q.paraphrases:
            ask.update(set(content_lemmas(p, lexicon)))
        asks.append(ask)
        cue = Counter()
        for c in q.cues:
            cue.update({t.lemma for t in tokenize(c) if t.is_word})
        cues.append(cue)
    n = len(questionnaire.questions)
    df = Counter()
    for ask, cue in zip(asks, cues, strict=True):
        df.update(set(ask) | set(cue))
    top = math.log((n + 1) / 1.5)

    def idf(lemma: str) -> float:
        return 1.0 if n < 3 else max(0.05, math.log((n + 1) / (df[lemma] + 0.5)) / top)

    profiles = []
    for q, ask, cue in zip(questionnaire.questions, asks, cues, strict=True):
        tokens = tokenize(q.text)
        ask_w = {lemma: idf(lemma) for lemma in ask}
        cue_w = {lemma: config.cue_from_question_weight * w for lemma, w in ask_w.items()}
        cue_w.update({lemma: idf(lemma) for lemma in cue})
        profiles.append(
            QuestionProfile(
                question=q,
                ask=SoftProfile(ask_w, vectors, config.similarity_floor),
                cues=SoftProfile(cue_w, vectors, config.similarity_floor),
                orientation=clause_tense(tokens, lexicon),
                secondary=tuple(
                    QuestionKind(kind)
                    for kind, words in lexicon.answer_type_words.items()
                    if kind != q.kind and words & {t.lemma for t in tokens}
                ),
            )
        )
    return profiles


@dataclass
class _Candidate:
    turn: int
    first: int  # clause indices, inclusive
    last: int
    score: float


@dataclass
class CallEvidence:
    """What the zero-shot extractor found in one call, per question (in questionnaire order)."""

    asks: dict[int, list[float]]  # agent turn → how strongly it asks each question
    client_turns: list[int]
    anchors: dict[int, list[float]]  # client turn → how strongly the agent just asked each question
    clauses: dict[int, list[list[tuple[float, bool]]]]  # client turn → clause → question → (score, typed)
    typed: dict[int, _TurnEvidence]
    vendor_pitch: bool


@dataclass
class _TurnEvidence:
    """Per-turn typed evidence, computed once per call."""

    org: list[tuple[int, int, float]] = field(default_factory=list)  # char spans + strength
    role: list[tuple[int, int]] = field(default_factory=list)
    numbers: list[tuple[int, int]] = field(default_factory=list)
    dodge: list[tuple[int, int]] = field(default_factory=list)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-9)


def _sentence_spans(turn: TurnDoc) -> dict[int, tuple[int, int]]:
    """The char span of each sentence of a turn that has clauses, by sentence index (as ``ask_scores``
    groups them)."""
    spans: dict[int, tuple[int, int]] = {}
    for clause in turn.clauses:
        a, b = spans.get(clause.sentence, (clause.start, clause.end))
        spans[clause.sentence] = (min(a, clause.start), max(b, clause.end))
    return spans


# "на прошлой неделе", "от понедельника", "год назад": a date in the past
_PAST_REFERENCE = re.compile(r"прошл|позапрошл|назад|^от\s|^со?\s+прошл", re.IGNORECASE)
# "восемь… нет, девять", "в мае, хотя нет, вру, к началу сезона": what follows corrects what came before
_CORRECTION = re.compile(r"(?<!\w)(?:нет|вру|точнее|вернее|то есть|ой)(?!\w)", re.IGNORECASE)
_DAY_LEVEL = re.compile(r"понедельник|вторник|сред[уаые]|четверг|пятниц|суббот|воскресен|завтра|сегодня", re.IGNORECASE)


def span_times(turn: Turn, start: int, end: int) -> tuple[float | None, float | None]:
    """Seconds of the words that say turn.text[start:end], else the turn's own times."""
    if not turn.words:
        return turn.start, turn.end
    lower = turn.text.lower()
    pos = 0
    hits = []
    for word in turn.words:
        found = lower.find(word.text.lower(), pos)
        if found < 0:
            continue
        pos = found + len(word.text)
        if found < end and start < pos:
            hits.append(word)
    if not hits:
        return turn.start, turn.end
    return hits[0].start, hits[-1].end


def _tense_conflict(orientation: str | None, tense: str | None) -> bool:
    """A past-tense answer to a question about plans, or a plan for a question about the past.

    No "present" orientation: suppliers are named in the past as often as not ("Абамет поставлял").
    """
    return {orientation, tense} == {"past", "future"}


def _said_of_past(turn: TurnDoc, token: Token) -> bool:
    clause = next((c for c in turn.clauses if c.start <= token.start < c.end), None)
    return clause is not None and clause.past_at(token.start, token.end)


@dataclass(frozen=True)
class _Entity:
    strong: bool
    start: int
    end: int


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


@dataclass
class SemanticEvidence:
    """The encoder's view of one call: per question, how much each agent sentence asks it and each
    client clause answers it (already turned into scores by ``SemanticWeights``)."""

    asks: dict[tuple[int, int], np.ndarray]  # (agent turn, sentence) → (questions,)
    clauses: dict[tuple[int, int], np.ndarray]  # (client turn, clause index) → (questions,)


class ZeroShotAnswerExtractor:
    """Question-conditioned answer extraction that needs no labelled examples."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        config: ZeroShotConfig | None = None,
        lexicon: Lexicon | None = None,
        vectors: WordVectors | None = None,
        encoder: TextEncoder | None = None,
    ) -> None:
        settings = get_settings()
        self.questionnaire = questionnaire
        self.config = config or load_zero_shot_config()
        self.lexicon = lexicon or load_lexicon(settings.lexicon)
        self.vectors = vectors or load_word_vectors()
        self.profiles = build_profiles(questionnaire, self.lexicon, self.vectors, self.config)
        self._dodge_patterns = [re.compile(rf"(?<!\w){re.escape(d)}(?!\w)") for d in self.lexicon.dodges]
        self.encoder = encoder
        # "zero-shot" is the product's untrained extractor: the rules and the encoder's meaning; the
        # rules alone (no encoder) are "zero-shot-rules"
        self.name = "zero-shot" if encoder is not None else "zero-shot-rules"
        if encoder is not None:
            # what asking sounds like: the question and its paraphrases; what it is about: the question text
            self._ask_vectors = _unit(
                np.stack([encoder.embed([q.text, *q.paraphrases], "query").mean(0) for q in questionnaire.questions])
            )
            self._question_vectors = encoder.embed([q.text for q in questionnaire.questions], "query")
        self._semantic_key = f"semantic:{id(self)}"

    # -- meaning: the encoder's similarities ---------------------------------------------
    def semantic(self, doc: CallDocument) -> SemanticEvidence | None:
        """Per agent sentence and client clause, the encoder's scores for each question (None without one)."""
        if self.encoder is None:
            return None
        if self._semantic_key in doc.encodings:
            return doc.encodings[self._semantic_key]  # type: ignore[return-value]
        w = self.config.semantic
        ask_keys, ask_texts, clause_keys, clause_texts = [], [], [], []
        ask_spans, clause_spans = {}, {}
        for turn in doc.turns:
            if turn.speaker != Speaker.AGENT:  # UNKNOWN: no roles, anyone may answer
                for clause in turn.clauses:
                    clause_keys.append((turn.index, clause.index))
                    clause_texts.append(turn.text[clause.start : clause.end])
                    clause_spans[(turn.index, clause.index)] = (clause.start, clause.end)
            if turn.speaker != Speaker.CLIENT:
                for sentence, (a, b) in _sentence_spans(turn).items():
                    ask_keys.append((turn.index, sentence))
                    ask_texts.append(turn.text[a:b])
                    ask_spans[(turn.index, sentence)] = (a, b)

        if w.source == "context":  # the call's one encoder pass, pooled over each sentence and clause
            encoding = self.encoder.encoding_of(doc)

            def vectors(keys: list, texts: list[str], kind: str) -> np.ndarray:
                spans = ask_spans if kind == "query" else clause_spans
                return _unit(np.stack([encoding.pool(k[0], [spans[k]])[0] for k in keys]))
        else:

            def vectors(keys: list, texts: list[str], kind: str) -> np.ndarray:
                return self.encoder.embed(texts, kind)

        def scores(keys, texts, kind: str, targets: np.ndarray, floor: float, span: float) -> np.ndarray:
            if not keys:
                return np.zeros((0, len(targets)), np.float32)
            cos = vectors(keys, texts, kind) @ targets.T
            if w.relative and cos.shape[1] > 2:  # how much closer to this question than to the others
                cos = cos - np.median(cos, axis=1, keepdims=True)
            return np.clip((cos - floor) / span, 0.0, w.cap)

        asks = scores(ask_keys, ask_texts, "query", self._ask_vectors, w.ask_floor, w.ask_span) * w.ask_weight
        clauses = scores(clause_keys, clause_texts, "passage", self._question_vectors, w.clause_floor, w.clause_span)
        out = SemanticEvidence(
            asks=dict(zip(ask_keys, asks, strict=True)),
            clauses=dict(zip(clause_keys, clauses * w.clause_weight, strict=True)),
        )
        doc.encodings[self._semantic_key] = out
        return out

    # -- anchors: where the agent asks each question -------------------------------------
    def ask_scores(self, doc: CallDocument) -> dict[int, list[float]]:
        """For each agent turn, how strongly it asks each question (in profile order)."""
        cfg = self.config
        sem = self.semantic(doc)
        scores: dict[int, list[float]] = {}
        for turn in doc.turns:
            if turn.speaker == Speaker.CLIENT:
                continue
            by_sentence: dict[int, list[Clause]] = {}
            for clause in turn.clauses:
                by_sentence.setdefault(clause.sentence, []).append(clause)
            row = [0.0] * len(self.profiles)
            for sentence, clauses in by_sentence.items():
                lemmas = [lemma for c in clauses for lemma in c.content]
                asking = (
                    any(c.is_question for c in clauses)
                    or not turn.punctuated
                    or any(lemma in self.lexicon.interrogatives for lemma in lemmas)
                )
                weight = cfg.ask_sentence_weight if asking else cfg.statement_sentence_weight
                meaning = sem.asks.get((turn.index, sentence)) if sem is not None else None
                for qi, profile in enumerate(self.profiles):
                    lexical = profile.ask.score(lemmas)
                    if meaning is not None:
                        lexical = max(lexical, float(meaning[qi]))
                    row[qi] = max(row[qi], weight * lexical)
            scores[turn.index] = row
        return scores

    def _anchor(self, doc: CallDocument, asks: dict[int, list[float]], turn: int, qi: int) -> float:
        k1 = doc.previous_agent_turn(turn)
        if k1 is None:
            return 0.0
        value = asks[k1][qi]
        k2 = doc.previous_agent_turn(k1)
        if k2 is not None:
            value = max(value, self.config.previous_exchange_decay * asks[k2][qi])
        return value

    # -- typed evidence --------------------------------------------------------------------
    def _evidence(self, turn: TurnDoc) -> _TurnEvidence:
        ev = _TurnEvidence()
        toks = turn.tokens
        for span in organization_spans(toks, self.lexicon):
            ev.org.append((toks[span.start].start, toks[span.end - 1].end, span.strength))
        for start, end in role_spans(toks, self.lexicon):
            ev.role.append((toks[start].start, toks[end - 1].end))
        for i, t in enumerate(toks):
            if t.is_word and t.known and t.grammemes & {"Name", "Patr", "Surn"} and t.is_capitalized:
                name = person_name_after(toks, i)
                if name:
                    ev.role.append((toks[name[0]].start, toks[name[1] - 1].end))
            if t.norm in ("сам", "сама"):
                ev.role.append((t.start, t.end))
        for ph in find_numbers(toks):
            ev.numbers.append((toks[ph.first].start, toks[ph.last - 1].end))
        norm = turn.text.lower().replace("ё", "е")
        for pattern in self._dodge_patterns:
            ev.dodge.extend((m.start(), m.end()) for m in pattern.finditer(norm))
        return ev

    def _entity(self, kind: QuestionKind, clause: Clause, turn: TurnDoc, ev: _TurnEvidence) -> _Entity | None:
        """The typed mention of ``kind`` in a clause, if any (strong, or weak evidence)."""
        s, e = clause.start, clause.end
        if kind == QuestionKind.MONEY_RUB:
            hits = [m for m in turn.money if _overlaps(s, e, m.start, m.end)]
            if hits:
                best = next((m for m in hits if m.explicit), hits[0])
                return _Entity(best.explicit, best.start, best.end)
        elif kind == QuestionKind.TIME_EXPRESSION:
            hits = [m for m in turn.times if _overlaps(s, e, m.start, m.end) and not _PAST_REFERENCE.search(m.text)]
            if hits:
                # a weekday or "tomorrow" is how people fix a call, rarely a purchase
                best = next((m for m in hits if not _DAY_LEVEL.search(m.text)), hits[0])
                return _Entity(not _DAY_LEVEL.search(best.text), best.start, best.end)
        elif kind == QuestionKind.ORGANIZATION:
            hits = [(st, a, b) for a, b, st in ev.org if _overlaps(s, e, a, b)]
            # "меня зовут Ирина, компания «Вкусный двор»": the speaker's own company
            if hits and not has_phrase(turn.text[s:e], self.lexicon.self_introduction):
                st, a, b = max(hits, key=lambda h: h[0])
                return _Entity(st >= 1.0, a, b)
        elif kind in (QuestionKind.PERSON_OR_ROLE, QuestionKind.NUMBER):
            spans = ev.role if kind == QuestionKind.PERSON_OR_ROLE else ev.numbers
            hit = next(((a, b) for a, b in spans if _overlaps(s, e, a, b)), None)
            if hit:
                return _Entity(True, *hit)
        elif kind == QuestionKind.YES_NO:
            first = next((t for t in clause.tokens if t.is_word), None)
            if first is not None and (first.norm in self.lexicon.negations or first.norm in self.lexicon.affirmations):
                return _Entity(False, first.start, first.end)
        return None

    # -- scoring -----------------------------------------------------------------------------
    def _clause_relevance(
        self,
        profile: QuestionProfile,
        clause: Clause,
        turn: TurnDoc,
        ev: _TurnEvidence,
        anchor: float,
        meaning: float = 0.0,
    ) -> tuple[float, bool]:
        cfg = self.config
        kw = cfg.kinds[profile.kind]
        entity = self._entity(profile.kind, clause, turn, ev)
        score = kw.cue * max(profile.cues.score(clause.content, clause.lemmas), meaning)
        if entity:
            score += kw.entity if entity.strong else kw.weak_entity
        for kind in profile.secondary:
            if self._entity(kind, clause, turn, ev):
                score += cfg.secondary_entity
                break
        if clause.content:
            score += kw.anchor_base * anchor
        if clause.is_question:
            score -= cfg.question_penalty
        if self._dodges(clause, ev):
            score -= cfg.dodge_penalty
        tense = clause.tense_at(entity.start, entity.end) if entity else clause.tense
        if _tense_conflict(profile.orientation, tense):
            score -= cfg.tense_penalty
        if profile.kind == QuestionKind.TIME_EXPRESSION and clause.lemmas & self.lexicon.appointment_words:
            score -= cfg.appointment_penalty
        return score, entity is not None

    @staticmethod
    def _dodges(clause: Clause, ev: _TurnEvidence) -> bool:
        """A dodge opens the clause or makes up most of it ("не знаю" — but not "я их не знаю")."""
        words = clause.words()
        for a, b in ev.dodge:
            if _overlaps(clause.start, clause.end, a, b):
                before = [w for w in words if w.end <= a]
                if len(before) <= 1 or len(words) <= 4:
                    return True
        return False

    def _best_run(self, profile: QuestionProfile, rel: list[tuple[float, bool]], turn: int) -> _Candidate | None:
        cfg = self.config
        needs_entity = cfg.kinds[profile.kind].requires_entity and KIND_NEEDS_ENTITY[profile.kind]
        best: _Candidate | None = None
        n = len(rel)
        for i in range(n):
            total = 0.0
            entity = False
            for j in range(i, min(n, i + cfg.max_run_clauses)):
                total += rel[j][0] - cfg.clause_cost
                entity = entity or rel[j][1]
                if needs_entity and not entity:
                    continue
                if best is None or total > best.score:
                    best = _Candidate(turn, i, j, total)
        return best

    def evidence(self, doc: CallDocument) -> CallEvidence:
        """Everything the extractor knows about a call before it picks answers.

        The trained extractor reads the same evidence as input features, so what the
        rules know is where learning starts.
        """
        asks = self.ask_scores(doc)
        sem = self.semantic(doc)
        client_turns = [t for t in doc.turns if t.speaker == Speaker.CLIENT and t.clauses]
        if not any(t.speaker == Speaker.CLIENT for t in doc.turns):
            client_turns = [t for t in doc.turns if t.speaker != Speaker.AGENT and t.clauses]
        typed = {t.index: self._evidence(t) for t in client_turns}
        anchors: dict[int, list[float]] = {}
        clauses: dict[int, list[list[tuple[float, bool]]]] = {}
        for turn in client_turns:
            anchors[turn.index] = [self._anchor(doc, asks, turn.index, qi) for qi in range(len(self.profiles))]
            clauses[turn.index] = []
            for c in turn.clauses:
                meaning = sem.clauses.get((turn.index, c.index)) if sem is not None else None
                clauses[turn.index].append(
                    [
                        self._clause_relevance(
                            profile,
                            c,
                            turn,
                            typed[turn.index],
                            anchors[turn.index][qi],
                            0.0 if meaning is None else float(meaning[qi]),
                        )
                        for qi, profile in enumerate(self.profiles)
                    ]
                )
        return CallEvidence(
            asks=asks,
            client_turns=[t.index for t in client_turns],
            anchors=anchors,
            clauses=clauses,
            typed=typed,
            vendor_pitch=is_vendor_pitch(doc, self.lexicon),
        )

    def extract(self, call: Call, document: CallDocument | None = None) -> list[Answer]:
        """Answers found in ``call``, at most one per question."""
        doc = document or CallDocument.build(call, self.lexicon)
        ev = self.evidence(doc)
        if ev.vendor_pitch:
            return []
        answers = []
        for qi, profile in enumerate(self.profiles):
            kw = self.config.kinds[profile.kind]
            best: _Candidate | None = None
            for t in ev.client_turns:
                cand = self._best_run(profile, [row[qi] for row in ev.clauses[t]], t)
                if cand is None:
                    continue
                cand.score += kw.anchor * ev.anchors[t][qi]
                if best is None or cand.score > best.score:
                    best = cand
            if best is None or best.score < kw.threshold:
                continue
            answer = self._answer(doc, profile, best)
            if answer is not None:
                answers.append(answer)
        return answers

    def span_answer(
        self, doc: CallDocument, question_index: int, turn: int, start: int, end: int, confidence: float
    ) -> Answer:
        """An answer for a span another model chose: its value normalised the same way, with evidence."""
        profile = self.profiles[question_index]
        tdoc = doc.turns[turn]
        span_tokens = [t for t in tdoc.tokens if t.start >= start and t.end <= end] or [
            t for t in tdoc.tokens if _overlaps(start, end, t.start, t.end)
        ]
        value, resolved, _ = self._value(profile.kind, tdoc, span_tokens, start, end, doc, profile)
        ev_start, ev_end = tdoc.sentence_span(start, end)
        seconds = span_times(doc.call.turns[turn], start, end)
        return Answer(
            question_id=profile.question.id,
            text=tdoc.text[start:end],
            value=value,
            resolved_date=resolved,
            turn=turn,
            char_start=start,
            char_end=end,
            start=seconds[0],
            end=seconds[1],
            confidence=round(min(max(confidence, 0.0), 0.999), 3),
            evidence=tdoc.text[ev_start:ev_end].strip(),
        )

    # -- building the answer -----------------------------------------------------------------
    def _trim(self, tokens: list[Token]) -> list[Token]:
        words = list(tokens)
        while words and (not words[0].is_word or words[0].norm in self.lexicon.leading_trim):
            words.pop(0)
        while words and not words[-1].is_word:
            words.pop()
        return words or tokens

    def _answer(self, doc: CallDocument, profile: QuestionProfile, cand: _Candidate) -> Answer | None:
        turn = doc.turns[cand.turn]
        clauses = turn.clauses[cand.first : cand.last + 1]
        span_tokens = [t for t in turn.tokens if clauses[0].start <= t.start and t.end <= clauses[-1].end]
        span_tokens = self._trim(span_tokens)
        start, end = span_tokens[0].start, span_tokens[-1].end
        value, resolved, focus = self._value(profile.kind, turn, span_tokens, start, end, doc, profile)
        if KIND_NEEDS_ENTITY[profile.kind] and value is None:
            return None
        ev_start, ev_end = turn.sentence_span(start, end)
        if focus is not None:
            # the answer is the sentence that says the amount or the date; the rest stays as evidence
            s_start, s_end = turn.sentence_span(*focus)
            span_tokens = self._trim([t for t in span_tokens if t.start >= s_start and t.end <= s_end])
            start, end = span_tokens[0].start, span_tokens[-1].end
        confidence = 1 / (
            1 + math.exp(-self.config.confidence_scale * (cand.score - self.config.kinds[profile.kind].threshold))
        )
        seconds = span_times(doc.call.turns[cand.turn], start, end)
        return Answer(
            question_id=profile.question.id,
            text=turn.text[start:end],
            value=value,
            resolved_date=resolved,
            turn=cand.turn,
            char_start=start,
            char_end=end,
            start=seconds[0],
            end=seconds[1],
            confidence=round(min(confidence, 0.999), 3),
            evidence=turn.text[ev_start:ev_end].strip(),
        )

    def _preferred_mention(self, profile: QuestionProfile, turn: TurnDoc, hits: list[TimeMention]) -> TimeMention:
        """Of several mentions, the corrected one ("в мае, хотя нет, к началу сезона"), else the one said
        next to the question's words ("бюджет в конце года, а закупка — к лету"), else the first."""

        def rank(item: tuple[int, TimeMention]) -> tuple[int, float, int]:
            k, m = item
            corrected = any(_CORRECTION.search(turn.text[p.end : m.start]) for p in hits[:k])
            s_start, s_end = turn.sentence_span(m.start, m.end)
            window = [
                t for t in turn.tokens if s_start <= t.start < s_end and abs(t.start - m.start) < 40 and t.is_word
            ]
            near = profile.cues.score([t.lemma for t in window], {t.lemma for t in window})
            return (int(corrected), near, -k)

        return max(enumerate(hits), key=rank)[1]

    def _value(
        self,
        kind: QuestionKind,
        turn: TurnDoc,
        span_tokens: list[Token],
        start: int,
        end: int,
        doc: CallDocument,
        profile: QuestionProfile,
    ) -> tuple[AnswerValue, date | None, tuple[int, int] | None]:
        """The normalised value, its resolved date, and where the chosen mention is (for money, dates)."""
        if kind == QuestionKind.MONEY_RUB:
            hits = [m for m in turn.money if _overlaps(start, end, m.start, m.end)]
            explicit = [m for m in hits if m.explicit]
            chosen = (explicit or hits)[-1] if hits else None
            return (chosen.value, None, (chosen.start, chosen.end)) if chosen else (None, None, None)
        if kind == QuestionKind.TIME_EXPRESSION:
            hits = [
                m for m in turn.times if _overlaps(start, end, m.start, m.end) and not _PAST_REFERENCE.search(m.text)
            ]
            if not hits:
                return None, None, None
            mention = self._preferred_mention(profile, turn, hits)
            said, resolved = time_value(mention.text, doc.call.reference_date)
            return said, resolved, (mention.start, mention.end)
        if kind == QuestionKind.ORGANIZATION:
            # names found in the whole turn ("Одно от Мебельного стиля": not a sentence start even
            # when the span starts there), kept inside the span
            toks = turn.tokens
            inside = [
                n
                for n in organization_spans(toks, self.lexicon)
                if _overlaps(start, end, toks[n.start].start, toks[n.end - 1].end)
            ]
            # "С Сименсом раньше работали, сейчас через Приводсервис берём": the present one
            names = [n for n in inside if not _said_of_past(turn, toks[n.start])] or inside
            value = organization_value(toks, self.lexicon, names)
            focus = (toks[names[0].start].start, toks[names[-1].end - 1].end) if names else None
            return value, None, focus
        if kind == QuestionKind.PERSON_OR_ROLE:
            # no focus: "X согласует, а решает Y" needs the whole chain as the answer
            return role_value(span_tokens, self.lexicon), None, None
        if kind == QuestionKind.YES_NO:
            return yes_no_value(span_tokens, self.lexicon), None, None
        if kind == QuestionKind.NUMBER:
            return number_value(span_tokens), None, None
        return None, None, None

    def asking_score(self, text: str) -> float:
        """How strongly ``text``, said by the agent, asks any question of the questionnaire."""
        doc = CallDocument.build(Call(call_id="asking", turns=[Turn(speaker=Speaker.AGENT, text=text)]), self.lexicon)
        return max(self.ask_scores(doc).get(0, [0.0]), default=0.0)

    @cached_property
    def question_ids(self) -> list[str]:
        return [p.question.id for p in self.profiles]

    def topics_asked(self, doc: CallDocument) -> list[str]:
        """Questions the agent asked (an agent sentence scores above the topic threshold)."""
        asks = self.ask_scores(doc)
        return [
            p.question.id
            for qi, p in enumerate(self.profiles)
            if any(row[qi] >= self.config.topic_threshold for row in asks.values())
        ]
