"""From words and speaker segments to turns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callqa.schemas import Word
from callqa.speech.segments import SpeakerSegment


@dataclass
class SpeakerTurn:
    """Consecutive words of one speaker (speaker is a diarization label, roles come later)."""

    speaker: str
    words: list[Word]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def speaker_of(word: Word, segments: Sequence[SpeakerSegment]) -> str | None:
    """The speaker whose segment covers most of the word (the nearest one if none overlaps)."""
    if not segments:
        return None
    best, best_overlap = None, 0.0
    for seg in segments:
        overlap = min(word.end, seg.end) - max(word.start, seg.start)
        if overlap > best_overlap:
            best, best_overlap = seg.speaker, overlap
    if best is not None:
        return best
    mid = (word.start + word.end) / 2
    return min(segments, key=lambda s: min(abs(mid - s.start), abs(mid - s.end))).speaker


def words_to_turns(words: Sequence[tuple[str, Word]], max_gap: float = 3.0) -> list[SpeakerTurn]:
    """Group (speaker, word) pairs, in time order, into turns; a long silence also starts a new turn."""
    turns: list[SpeakerTurn] = []
    for speaker, word in sorted(words, key=lambda sw: (sw[1].start, sw[1].end)):
        last = turns[-1] if turns else None
        if last is not None and last.speaker == speaker and word.start - last.end <= max_gap:
            last.words.append(word)
        else:
            turns.append(SpeakerTurn(speaker, [word]))
    return turns


def assign_words(words: Sequence[Word], segments: Sequence[SpeakerSegment]) -> list[tuple[str, Word]]:
    """Label every word with a speaker by time."""
    return [(speaker_of(w, segments) or "spk0", w) for w in words]
