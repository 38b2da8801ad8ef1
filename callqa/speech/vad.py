"""Voice activity detection with Silero VAD (the PyPI package ships its weights)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from callqa.speech.segments import Segment

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class VADConfig:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 60
    chunk_seconds: float = 600.0  # long recordings are scored in chunks of this length


class SileroVAD:
    """Speech regions of 16 kHz mono audio."""

    name = "silero-vad"

    def __init__(self, config: VADConfig | None = None) -> None:
        self.config = config or VADConfig()
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from silero_vad import load_silero_vad

                self._model = load_silero_vad(onnx=True)
        return self._model

    def __call__(self, samples: np.ndarray, offset: float = 0.0) -> list[Segment]:
        """Speech segments in seconds (shifted by ``offset``)."""
        import torch
        from silero_vad import get_speech_timestamps

        cfg = self.config
        model = self._load()
        chunk = int(cfg.chunk_seconds * SAMPLE_RATE)
        segments: list[Segment] = []
        for begin in range(0, len(samples), chunk):
            piece = torch.from_numpy(np.ascontiguousarray(samples[begin : begin + chunk], dtype=np.float32))
            stamps = get_speech_timestamps(
                piece,
                model,
                threshold=cfg.threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=cfg.min_speech_ms,
                min_silence_duration_ms=cfg.min_silence_ms,
                speech_pad_ms=cfg.speech_pad_ms,
            )
            base = begin / SAMPLE_RATE + offset
            for s in stamps:
                seg = Segment(base + s["start"] / SAMPLE_RATE, base + s["end"] / SAMPLE_RATE)
                # a word cut by the chunk border is joined back
                if segments and seg.start - segments[-1].end < cfg.min_silence_ms / 1000:
                    segments[-1] = Segment(segments[-1].start, seg.end)
                else:
                    segments.append(seg)
        return segments
