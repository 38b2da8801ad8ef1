"""Voice activity detection with Silero VAD (the PyPI package ships its weights).

Telephone audio (nothing above 4 kHz, whatever rate the file was stored at) is scored at 8 kHz,
the rate Silero has a telephone model for. At 16 kHz an upsampled narrow-band signal with
steady line noise can make Silero's speech probability decay to zero after 10–20 s and stay
there (measured on synthetic phone calls: speech recall 0.17 at 16 kHz vs 0.999 at 8 kHz on
the same call; no call got worse at 8 kHz).
"""

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
    narrowband: bool | None = None  # score at 8 kHz; None = when the audio has nothing above 4 kHz


NARROWBAND_SHARE = 1e-3  # a signal with less of its power above 3.9 kHz than this is telephone band


def is_narrowband(samples: np.ndarray, rate: int = SAMPLE_RATE, seconds: float = 120.0) -> bool:
    """Whether the (first ``seconds`` of the) signal is band-limited to telephone bandwidth."""
    frame = 1024
    x = np.asarray(samples[: int(seconds * rate)], dtype=np.float64)
    n = len(x) // frame
    if n == 0:
        return False
    power = (np.abs(np.fft.rfft(x[: n * frame].reshape(n, frame) * np.hanning(frame), axis=1)) ** 2).sum(axis=0)
    total = float(power.sum())
    if total <= 0:
        return False
    high = np.fft.rfftfreq(frame, 1 / rate) > 3900
    return float(power[high].sum()) / total < NARROWBAND_SHARE


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
        rate = SAMPLE_RATE
        narrowband = cfg.narrowband if cfg.narrowband is not None else is_narrowband(samples)
        if narrowband:
            import soxr

            rate = 8_000
            samples = soxr.resample(np.asarray(samples, dtype=np.float32), SAMPLE_RATE, rate)
        chunk = int(cfg.chunk_seconds * rate)
        segments: list[Segment] = []
        for begin in range(0, len(samples), chunk):
            piece = torch.from_numpy(np.ascontiguousarray(samples[begin : begin + chunk], dtype=np.float32))
            stamps = get_speech_timestamps(
                piece,
                model,
                threshold=cfg.threshold,
                sampling_rate=rate,
                min_speech_duration_ms=cfg.min_speech_ms,
                min_silence_duration_ms=cfg.min_silence_ms,
                speech_pad_ms=cfg.speech_pad_ms,
            )
            base = begin / rate + offset
            for s in stamps:
                seg = Segment(base + s["start"] / rate, base + s["end"] / rate)
                # a word cut by the chunk border is joined back
                if segments and seg.start - segments[-1].end < cfg.min_silence_ms / 1000:
                    segments[-1] = Segment(segments[-1].start, seg.end)
                else:
                    segments.append(seg)
        return segments
