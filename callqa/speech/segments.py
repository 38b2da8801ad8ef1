"""Time segments shared by the speech stages (seconds from the start of the recording)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class SpeakerSegment:
    """Who spoke when; overlapping segments of different speakers are kept."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def total_duration(segments: Iterable[Segment | SpeakerSegment]) -> float:
    return sum(s.end - s.start for s in segments)


def write_rttm(path: str | Path, uri: str, segments: Iterable[SpeakerSegment]) -> Path:
    """Write segments in the NIST RTTM format (one SPEAKER line each)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"SPEAKER {uri} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> {s.speaker} <NA> <NA>"
        for s in sorted(segments, key=lambda s: (s.start, s.speaker))
    ]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


def read_rttm(path: str | Path) -> dict[str, list[SpeakerSegment]]:
    """Read an RTTM file: recording id → speaker segments."""
    out: dict[str, list[SpeakerSegment]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) < 8 or parts[0] != "SPEAKER":
            continue
        start, duration = float(parts[3]), float(parts[4])
        out.setdefault(parts[1], []).append(SpeakerSegment(start, start + duration, parts[7]))
    return out


def to_annotation(segments: Iterable[SpeakerSegment]):  # -> pyannote.core.Annotation
    """Speaker segments as a pyannote ``Annotation`` (empty ones dropped, overlaps kept) for DER/JER."""
    from pyannote.core import Annotation
    from pyannote.core import Segment as PSegment

    ann = Annotation()
    for k, s in enumerate(segments):
        if s.end > s.start:
            ann[PSegment(s.start, s.end), k] = s.speaker
    return ann
