"""Timing metrics of a call with timed turns (Gong-style): who talks, how long, who interrupts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from callqa.schemas import Speaker, TimingMetrics, Turn

MONOLOGUE_GAP = 1.0  # a pause shorter than this inside one speaker's speech does not end a monologue
PAUSE_MIN = 1.0  # silences at least this long count as pauses
INTERRUPTION_MARGIN = 0.2  # starting this long before the other's turn ends is an interruption


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Sequence[tuple[float, float]]) -> float:
    return sum(e - s for s, e in intervals)


def _intersection(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            lo, hi = max(s1, s2), min(e1, e2)
            if hi > lo:
                out.append((lo, hi))
    return out


def _longest_monologue(own: list[tuple[float, float]], other: list[tuple[float, float]]) -> float:
    """Longest stretch of one speaker's speech that the other does not break into."""
    best = 0.0
    current: tuple[float, float] | None = None
    for start, end in own:
        if current is not None:
            gap_start, gap_end = current[1], start
            interrupted = any(s < gap_end and e > gap_start for s, e in other)
            if gap_end - gap_start <= MONOLOGUE_GAP and not interrupted:
                current = (current[0], end)
                continue
            best = max(best, current[1] - current[0])
        current = (start, end)
    if current is not None:
        best = max(best, current[1] - current[0])
    return best


def timing_metrics(turns: Sequence[Turn]) -> TimingMetrics | None:
    """Timing metrics, or None when the turns carry no times (a text-only transcript)."""
    timed = [t for t in turns if t.start is not None and t.end is not None and t.end > t.start]
    if not timed:
        return None
    speech = {
        role: _union([(t.start, t.end) for t in timed if t.speaker == role]) for role in (Speaker.AGENT, Speaker.CLIENT)
    }
    agent, client = speech[Speaker.AGENT], speech[Speaker.CLIENT]
    talk = {role: _length(iv) for role, iv in speech.items()}
    total_talk = talk[Speaker.AGENT] + talk[Speaker.CLIENT]
    start, end = min(t.start for t in timed), max(t.end for t in timed)
    duration = max(end - start, 1e-6)
    overlaps = _intersection(agent, client)
    everyone = _union(agent + client)
    pauses = [b[0] - a[1] for a, b in itertools.pairwise(everyone) if b[0] - a[1] >= PAUSE_MIN]
    ordered = sorted(timed, key=lambda t: t.start)
    interruptions = sum(
        1
        for t in ordered
        if t.speaker == Speaker.AGENT
        and any(c.speaker == Speaker.CLIENT and c.start < t.start < c.end - INTERRUPTION_MARGIN for c in ordered)
    )
    switches = sum(1 for a, b in itertools.pairwise(ordered) if a.speaker != b.speaker)

    def words_per_minute(role: Speaker) -> float:
        n = sum(len(t.text.split()) for t in timed if t.speaker == role)
        return round(60 * n / talk[role], 1) if talk[role] else 0.0

    return TimingMetrics(
        duration=round(duration, 2),
        agent_talk_seconds=round(talk[Speaker.AGENT], 2),
        client_talk_seconds=round(talk[Speaker.CLIENT], 2),
        agent_talk_share=round(talk[Speaker.AGENT] / total_talk, 4) if total_talk else 0.0,
        client_talk_share=round(talk[Speaker.CLIENT] / total_talk, 4) if total_talk else 0.0,
        agent_longest_monologue=round(_longest_monologue(agent, client), 2),
        client_longest_monologue=round(_longest_monologue(client, agent), 2),
        interruptions=interruptions,
        overlap_count=len(overlaps),
        overlap_seconds=round(_length(overlaps), 2),
        pause_count=len(pauses),
        longest_pause=round(max(pauses, default=0.0), 2),
        silence_share=round(1 - _length(everyone) / duration, 4),
        agent_words_per_minute=words_per_minute(Speaker.AGENT),
        client_words_per_minute=words_per_minute(Speaker.CLIENT),
        speaker_switches_per_minute=round(60 * switches / duration, 2),
    )
