"""Conversation metrics from the turns alone: who talks, how the agent asks, what the agent says."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from callqa.schemas import CallMetrics, Speaker
from callqa.text.lexicon import Lexicon
from callqa.understanding.document import CallDocument, TurnDoc
from callqa.understanding.timing import timing_metrics

# "что" is left out: more often a conjunction ("извините, что беспокою") than a question
_INTERROGATIVES = frozenset({"кто", "кого", "кому", "когда", "где", "куда", "сколько", "какой", "какая",
                             "какое", "какие", "каким", "какую", "каком", "как", "почему", "зачем", "чей"})  # fmt: skip


def count_phrases(text: str, phrases: Iterable[str]) -> Counter[str]:
    """How often each phrase is said (whole words, case- and ё-insensitive).

    Longer phrases are counted first and blanked out, so "в общем-то" is not also "в общем".
    """
    norm = text.lower().replace("ё", "е")
    counts: Counter[str] = Counter()
    for phrase in sorted(set(phrases), key=len, reverse=True):
        pattern = re.compile(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])")
        n = len(pattern.findall(norm))
        if n:
            counts[phrase] = n
            norm = pattern.sub(" ", norm)
    return counts


def questions_in(turn: TurnDoc) -> int:
    """Questions asked in a turn (by \"?\", or by an interrogative opening a clause in raw ASR)."""
    if turn.punctuated:
        return sum(1 for s, e in turn.sentences if turn.text[s:e].rstrip().endswith("?"))
    # raw ASR has no "?": a clause asks when an interrogative (or "ли") opens it
    return sum(1 for clause in turn.clauses if _asks(clause.words()))


def _asks(words: list) -> bool:
    head = [w.norm for w in words[:4]]
    if "ли" in head:
        return True
    return any(w in _INTERROGATIVES for w in head) or (bool(head) and head[0] == "что")


def text_metrics(
    doc: CallDocument, lexicon: Lexicon, topics_covered: list[str], question_ids: list[str]
) -> CallMetrics:
    """Talk share, question rate, filler and value-reducing words of the agent, topics covered."""
    agent = [t for t in doc.turns if t.speaker == Speaker.AGENT and t.text.strip()]
    client = [t for t in doc.turns if t.speaker == Speaker.CLIENT and t.text.strip()]
    agent_words = sum(sum(tok.is_word for tok in t.tokens) for t in agent)
    client_words = sum(sum(tok.is_word for tok in t.tokens) for t in client)
    agent_text = "\n".join(t.text for t in agent)
    fillers = count_phrases(agent_text, lexicon.filler_words)
    reducing = count_phrases(agent_text, lexicon.value_reducing_words)
    questions = sum(questions_in(t) for t in agent)
    total_words = agent_words + client_words
    covered = [q for q in question_ids if q in set(topics_covered)]
    return CallMetrics(
        agent_turns=len(agent),
        client_turns=len(client),
        agent_words=agent_words,
        client_words=client_words,
        agent_word_share=round(agent_words / total_words, 4) if total_words else 0.0,
        agent_questions=questions,
        agent_question_rate=round(questions / len(agent), 4) if agent else 0.0,
        filler_words=dict(fillers),
        filler_word_rate=round(100 * sum(fillers.values()) / agent_words, 3) if agent_words else 0.0,
        value_reducing_words=dict(reducing),
        strong_words=dict(count_phrases(agent_text, lexicon.strong_words)),
        bad_words=dict(count_phrases(agent_text, lexicon.bad_words)),
        topics_covered=covered,
        topics_missing=[q for q in question_ids if q not in covered],
        timing=timing_metrics(doc.call.turns),
    )
