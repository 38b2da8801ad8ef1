"""What each speech stage must provide; NeMo, faster-whisper and channel-based stages plug in here.

All audio here is mono float32 at 16 kHz; all times are seconds from the start of the recording.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from callqa.schemas import Word
from callqa.speech.segments import Segment, SpeakerSegment


class Diarizer(Protocol):
    """Who spoke when."""

    name: str

    def __call__(self, samples: np.ndarray, speech: list[Segment], num_speakers: int | None) -> list[SpeakerSegment]:
        """Speaker segments (overlaps kept) over the VAD ``speech``; ``num_speakers`` None = estimate."""
        ...


class Transcriber(Protocol):
    """Speech to words with timestamps."""

    name: str

    def transcribe(self, samples: np.ndarray, regions: list[Segment]) -> list[Word]:
        """Words with absolute times, decoding only inside ``regions`` (so silence yields no words)."""
        ...


class SpeakerEmbedder(Protocol):
    """A voice as a vector (for voiceprints and role assignment)."""

    name: str

    def embed(self, samples: np.ndarray, regions: list[Segment]) -> np.ndarray:
        """One L2-normalised embedding of the speech inside ``regions``."""
        ...
