"""Which diarized speaker is the manager (AGENT) and which the client.

In order of trust: telephony metadata (a channel map), the manager's enrolled voiceprint,
and, when neither is available, what people say: the agent introduces himself and the
company, asks the questionnaire's questions and asks more questions in general.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from callqa.schemas import Speaker
from callqa.speech.transcript import SpeakerTurn

_INTRO = ("меня зовут", "компания", "это ", "беспокоит", "звоню", "вас приветствует", "слушаю")
OPENING_TURNS = 3
OPENER_MIN_WORDS = 2
OPENER_BONUS = 8.0  # a prior the other evidence must clearly outweigh: 38 of 38 dev calls open with the agent


@dataclass(frozen=True)
class RoleAssignment:
    roles: dict[str, Speaker]  # diarization label → role
    method: str  # "channel_map" | "voiceprint" | "text"
    score: float | None = None  # voiceprint similarity or text-score margin


def roles_from_channels(labels: Sequence[str], agent_channel: int) -> RoleAssignment:
    """Stereo telephony: the agent's channel is known from the PBX."""
    return RoleAssignment(
        {label: Speaker.AGENT if label == f"ch{agent_channel}" else Speaker.CLIENT for label in labels},
        "channel_map",
    )


def roles_from_voiceprint(
    embeddings: Mapping[str, np.ndarray], voiceprint: np.ndarray, *, threshold: float
) -> RoleAssignment | None:
    """The speaker whose voice is closest to the manager's enrolled voiceprint, if close enough."""
    if not embeddings:
        return None
    sims = {label: float(np.dot(vec, voiceprint)) for label, vec in embeddings.items()}
    best = max(sims, key=sims.get)
    if sims[best] < threshold:
        return None
    return RoleAssignment(
        {label: Speaker.AGENT if label == best else Speaker.CLIENT for label in embeddings}, "voiceprint", sims[best]
    )


def agent_text_score(turns: Sequence[SpeakerTurn], asks: Sequence[float]) -> float:
    """How much a speaker sounds like the manager: introductions, questions, the questionnaire."""
    score = 0.0
    for k, turn in enumerate(turns):
        text = turn.text.lower()
        if k < OPENING_TURNS and any(p in text for p in _INTRO):
            score += 2.0
        score += 0.5 * text.count("?")
    return score + sum(asks)


def roles_from_text(turns: Sequence[SpeakerTurn], asks_by_turn: Sequence[float] | None = None) -> RoleAssignment:
    """The speaker who introduces the company and asks the questions is the agent."""
    by_speaker: dict[str, list[SpeakerTurn]] = defaultdict(list)
    asks: dict[str, list[float]] = defaultdict(list)
    for k, turn in enumerate(turns):
        by_speaker[turn.speaker].append(turn)
        asks[turn.speaker].append(asks_by_turn[k] if asks_by_turn else 0.0)
    if not by_speaker:
        return RoleAssignment({}, "text")
    scores = {s: agent_text_score(ts, asks[s]) for s, ts in by_speaker.items()}
    # whoever opens the call with a sentence (not a bare "алло") is the agent: he answers inbound
    # calls and opens outbound ones; a vendor calling in introduces his company only after him
    opener = next((t.speaker for t in turns if len(t.text.split()) >= OPENER_MIN_WORDS), None)
    if opener is not None:
        scores[opener] += OPENER_BONUS
    order = [t.speaker for t in turns]
    # ties go to whoever spoke first (the agent answers inbound calls and opens outbound ones)
    agent = max(scores, key=lambda s: (scores[s], -order.index(s)))
    ranked = sorted(scores.values(), reverse=True)
    margin = ranked[0] - ranked[1] if len(ranked) > 1 else ranked[0]
    return RoleAssignment(
        {s: Speaker.AGENT if s == agent else Speaker.CLIENT for s in by_speaker}, "text", round(margin, 3)
    )
