"""Domain types that cross boundaries: calls, turns, questionnaires, answers, results."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AnswerValue = bool | int | float | str | None
"""A normalised answer value: roubles (int), yes/no (bool), a name or expression (str)."""


class Speaker(StrEnum):
    AGENT = "AGENT"
    CLIENT = "CLIENT"
    UNKNOWN = "UNKNOWN"


class CallType(StrEnum):
    COLD_CALL = "cold_call"
    FOLLOW_UP = "follow_up"
    INBOUND_SALE = "inbound_sale"
    INBOUND_SERVICE = "inbound_service"
    COMPLAINT = "complaint"
    WHERE_TO_BUY = "where_to_buy"
    NPS_SURVEY = "nps_survey"
    SPAM = "spam"


class ErrorId(StrEnum):
    """Manager errors the QA side flags (DESIGN.md §4)."""

    NO_INTRODUCTION = "no_introduction"
    FILLER_WORDS = "filler_words"
    INCOMPLETE_QUALIFICATION = "incomplete_qualification"
    OBJECTION_NOT_HANDLED = "objection_not_handled"
    NO_NEXT_STEP = "no_next_step"
    INTERRUPTION = "interruption"
    VALUE_REDUCING_WORDS = "value_reducing_words"
    NO_NEEDS_DISCOVERY = "no_needs_discovery"


class QuestionKind(StrEnum):
    """How an answer's value is normalised."""

    ORGANIZATION = "organization"
    TIME_EXPRESSION = "time_expression"
    MONEY_RUB = "money_rub"
    NUMBER = "number"
    PERSON_OR_ROLE = "person_or_role"
    YES_NO = "yes_no"
    TEXT = "text"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Word(_Strict):
    text: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    confidence: float | None = Field(default=None, ge=0, le=1)


class Turn(_Strict):
    speaker: Speaker
    text: str
    start: float | None = Field(default=None, ge=0, description="seconds from the start of the call")
    end: float | None = Field(default=None, ge=0)
    words: list[Word] | None = None

    @model_validator(mode="after")
    def _times_ordered(self) -> Turn:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"turn ends ({self.end}) before it starts ({self.start})")
        return self


def _non_empty_transcript(turns: list[Turn]) -> list[Turn]:
    if not any(t.text.strip() for t in turns):
        raise ValueError("the transcript is empty: no turn has any text")
    return turns


class Call(_Strict):
    """A call to analyse: a transcript with optional timing and telephony metadata."""

    call_id: str = Field(min_length=1)
    started_at: datetime | None = None
    manager_id: str | None = None
    channels: int | None = Field(default=None, ge=1, le=2, description="audio channels of the recording")
    industry: str | None = None
    turns: list[Turn]

    @field_validator("turns")
    @classmethod
    def _not_empty(cls, turns: list[Turn]) -> list[Turn]:
        return _non_empty_transcript(turns)

    @property
    def reference_date(self) -> date:
        """The date relative expressions ("next Tuesday") are resolved against: the call's, else today."""
        return self.started_at.date() if self.started_at else date.today()


QuestionId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Question(_Strict):
    id: QuestionId
    text: str = Field(min_length=3)
    kind: QuestionKind = QuestionKind.TEXT
    crm_field: str | None = None
    required: bool = False
    paraphrases: list[str] = Field(
        default_factory=list, description="other ways a manager asks it; they sharpen zero-shot extraction"
    )
    cues: list[str] = Field(
        default_factory=list, description="words typical of an answer, for answers the client volunteers"
    )


class Questionnaire(_Strict):
    name: str = Field(min_length=1)
    language: str = "ru"
    questions: list[Question] = Field(min_length=1)

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, questions: list[Question]) -> list[Question]:
        seen: set[str] = set()
        dupes = sorted({q.id for q in questions if q.id in seen or seen.add(q.id)})
        if dupes:
            raise ValueError(f"duplicate question ids: {', '.join(dupes)}")
        return questions

    @property
    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def get(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)


class Answer(_Strict):
    """The client's answer to one question, with the evidence to check it."""

    question_id: str
    text: str = Field(description="the answer span exactly as said (a substring of the turn)")
    value: AnswerValue = Field(default=None, description="normalised value by question kind")
    resolved_date: date | None = Field(
        default=None, description="a time expression resolved to a date, relative to the call date"
    )
    turn: int = Field(ge=0)
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)
    start: float | None = Field(default=None, ge=0, description="seconds, when the words are timed")
    end: float | None = Field(default=None, ge=0)
    confidence: float = Field(ge=0, le=1)
    evidence: str = Field(description="the quote around the answer, for a person to verify it")


class TimingMetrics(_Strict):
    """Metrics that need turn times (from audio): talk/listen, monologues, interruptions, pauses."""

    duration: float = Field(description="seconds from the first word to the last")
    agent_talk_seconds: float
    client_talk_seconds: float
    agent_talk_share: float = Field(ge=0, le=1, description="agent's share of all talk time (talk/listen ratio)")
    client_talk_share: float = Field(ge=0, le=1)
    agent_longest_monologue: float = Field(description="seconds the agent spoke without the client breaking in")
    client_longest_monologue: float
    interruptions: int = Field(description="agent turns that start while the client is still speaking")
    overlap_count: int
    overlap_seconds: float
    pause_count: int = Field(description="silences of a second or more")
    longest_pause: float
    silence_share: float = Field(ge=0, le=1)
    agent_words_per_minute: float
    client_words_per_minute: float
    speaker_switches_per_minute: float = Field(description="interactivity")


class CallMetrics(_Strict):
    """Conversation metrics computed from the turns (text-only; timing metrics need audio)."""

    agent_turns: int
    client_turns: int
    agent_words: int
    client_words: int
    agent_word_share: float = Field(ge=0, le=1, description="share of all words spoken by the agent")
    agent_questions: int
    agent_question_rate: float = Field(ge=0, description="questions per agent turn")
    filler_words: dict[str, int] = Field(description="agent's filler words and how often each was said")
    filler_word_rate: float = Field(ge=0, description="filler words per 100 agent words")
    value_reducing_words: dict[str, int]
    strong_words: dict[str, int]
    bad_words: dict[str, int]
    topics_covered: list[str] = Field(description="questionnaire questions the agent asked")
    topics_missing: list[str]
    timing: TimingMetrics | None = Field(default=None, description="only when the turns are timed (audio)")


class AudioInfo(_Strict):
    """How a recording was turned into the transcript."""

    duration: float
    channels: int
    source_rate: int
    source_format: str
    separate_channels: bool = Field(description="one speaker per channel (stereo telephony)")
    diarizer: str | None = Field(description="None when the channels were the speakers")
    asr: str
    roles_method: str = Field(description="channel_map | voiceprint | text")
    roles_score: float | None = None
    stage_seconds: dict[str, float]


class ManagerError(_Strict):
    """A mistake of the manager in one call, with the words that show it."""

    error: ErrorId
    probability: float = Field(ge=0, le=1)
    turn: int | None = Field(default=None, ge=0, description="the turn the model found most telling")
    quote: str = Field(description="that turn's words, for the coach to check")


class CallTypePrediction(_Strict):
    call_type: CallType
    probability: float = Field(ge=0, le=1)
    spam: bool
    turn: int | None = Field(default=None, ge=0)
    quote: str = ""


class CallResult(_Strict):
    """Everything callqa says about one call."""

    call_id: str
    started_at: datetime | None = None
    manager_id: str | None = None
    questionnaire: str
    turns: list[Turn]
    answers: list[Answer]
    metrics: CallMetrics
    model: str = Field(description="the answer model that produced the answers")
    errors: list[ManagerError] | None = Field(default=None, description="None when no error model ran")
    call_type: CallTypePrediction | None = None
    models: dict[str, str] = Field(default_factory=dict, description="task → the model that did it")
    audio: AudioInfo | None = None

    def answer_for(self, question_id: str) -> Answer | None:
        return next((a for a in self.answers if a.question_id == question_id), None)


class GoldAnswer(_Strict):
    """A labelled answer: turn index, exact substring of that CLIENT turn, normalised value."""

    turn: int = Field(ge=0)
    text: str = Field(min_length=1)
    value: AnswerValue = None


class LabelledCall(BaseModel):
    """One line of the labelled-call JSONL format (DESIGN.md §4)."""

    model_config = ConfigDict(extra="ignore")

    call_id: str = Field(min_length=1)
    industry: str | None = None
    call_type: CallType | None = None
    started_at: datetime | None = None
    manager_id: str | None = None
    turns: list[Turn] = Field(min_length=1)
    answers: dict[str, GoldAnswer | None] = Field(default_factory=dict)
    errors: list[ErrorId] = Field(default_factory=list)
    nps: int | None = Field(default=None, ge=0, le=10)
    callback: str | None = None
    notes: str = ""

    @field_validator("turns")
    @classmethod
    def _not_empty(cls, turns: list[Turn]) -> list[Turn]:
        return _non_empty_transcript(turns)

    @model_validator(mode="after")
    def _answers_point_into_client_turns(self) -> LabelledCall:
        for qid, gold in self.answers.items():
            if gold is None:
                continue
            if gold.turn >= len(self.turns):
                raise ValueError(f"answer {qid!r}: turn {gold.turn} does not exist ({len(self.turns)} turns)")
            turn = self.turns[gold.turn]
            if turn.speaker != Speaker.CLIENT:
                raise ValueError(f"answer {qid!r}: turn {gold.turn} is spoken by {turn.speaker}, not CLIENT")
            if gold.text not in turn.text:
                raise ValueError(f"answer {qid!r}: text {gold.text!r} is not a substring of turn {gold.turn}")
        return self

    def to_call(self) -> Call:
        """The transcript as a call to analyse (labels dropped)."""
        return Call(
            call_id=self.call_id,
            started_at=self.started_at,
            manager_id=self.manager_id,
            industry=self.industry,
            turns=self.turns,
        )

    def gold_span(self, question_id: str) -> tuple[int, int, int] | None:
        """(turn, char_start, char_end) of the gold answer, or None when unanswered."""
        gold = self.answers.get(question_id)
        if gold is None:
            return None
        start = self.turns[gold.turn].text.index(gold.text)
        return gold.turn, start, start + len(gold.text)

    def json_line(self) -> str:
        """Serialise back to one JSONL line in the shared format."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=False)
        for key in ("started_at", "manager_id"):
            if data[key] is None:
                del data[key]
        data["turns"] = [
            {k: v for k, v in t.items() if v is not None or k in ("speaker", "text")} for t in data["turns"]
        ]
        return json.dumps(data, ensure_ascii=False)
