"""Audio ingest: any common format, mono or stereo, any rate → float32 16 kHz per channel.

Decoding is libsndfile (through ``soundfile``: WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3) and
resampling is libsoxr (``soxr``, high quality). Anything we cannot use is refused with a
``BadInput`` that says why: an empty or truncated file, not audio, no duration, too long,
more than two channels, or nothing but silence.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from callqa.errors import BadInput

TARGET_RATE = 16_000
FRAME_SECONDS = 0.03
_WAV_HEADER_SLACK = 64  # bytes a writer may leave unaccounted at the end


@dataclass
class Audio:
    """Decoded audio: ``samples`` is float32, shape (channels, n), at ``sample_rate`` (16 kHz)."""

    samples: np.ndarray
    source_rate: int
    source_format: str
    sample_rate: int = TARGET_RATE

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def mono(self) -> np.ndarray:
        """All channels mixed down."""
        return self.samples.mean(axis=0) if self.channels > 1 else self.samples[0]


def _check_wav_truncation(data: bytes, name: str) -> None:
    """A WAV whose data chunk claims more bytes than the file holds was cut off in transfer."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            available = len(data) - pos - 8
            if size != 0xFFFFFFFF and size > available + _WAV_HEADER_SLACK:
                raise BadInput(
                    f"{name}: truncated WAV: the header declares {size} bytes of audio, the file holds {available}"
                )
            return
        pos += 8 + size + (size & 1)


def _frame_dbfs(samples: np.ndarray, rate: int) -> np.ndarray:
    """Loudness of each 30 ms frame in dBFS (mono mix)."""
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    hop = max(1, int(rate * FRAME_SECONDS))
    n = len(mono) // hop
    if n == 0:
        return np.array([20 * np.log10(np.sqrt(np.mean(mono**2)) + 1e-12)])
    frames = mono[: n * hop].reshape(n, hop)
    return 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-12)


def load_audio(
    source: str | Path | bytes,
    *,
    max_seconds: float = 7200.0,
    silence_dbfs: float = -50.0,
    name: str | None = None,
) -> Audio:
    """Decode, check and resample a recording to 16 kHz float32, one row per channel."""
    if isinstance(source, bytes):
        data, label = source, name or "<upload>"
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise BadInput(f"{label}: no such file")
        data = path.read_bytes()
    if not data:
        raise BadInput(f"{label}: empty file")
    _check_wav_truncation(data, label)
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise BadInput(f"{label}: not a readable audio file (wav, mp3, ogg/opus, flac): {exc}") from exc
    if info.frames <= 0 or info.samplerate <= 0 or info.duration <= 0:
        raise BadInput(f"{label}: the recording has zero duration")
    if info.duration > max_seconds:
        raise BadInput(f"{label}: {info.duration:.0f} s is longer than the limit of {max_seconds:.0f} s")
    if info.channels > 2:
        raise BadInput(f"{label}: expected mono or stereo, got {info.channels} channels")
    try:
        raw, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadInput(f"{label}: truncated or corrupt audio: {exc}") from exc
    if raw.shape[0] == 0:
        raise BadInput(f"{label}: the recording has zero duration")
    if raw.shape[0] < 0.98 * info.frames:
        raise BadInput(
            f"{label}: truncated: the header says {info.duration:.1f} s, only {raw.shape[0] / rate:.1f} s decode"
        )
    if not np.isfinite(raw).all():
        raise BadInput(f"{label}: corrupt audio (non-finite samples)")
    if _frame_dbfs(raw.T, rate).max() < silence_dbfs:
        raise BadInput(f"{label}: the recording is silent (no frame louder than {silence_dbfs:.0f} dBFS)")
    channels = [
        soxr.resample(raw[:, c], rate, TARGET_RATE, quality="HQ") if rate != TARGET_RATE else raw[:, c]
        for c in range(raw.shape[1])
    ]
    samples = np.ascontiguousarray(np.stack(channels), dtype=np.float32)
    return Audio(samples=samples, source_rate=int(rate), source_format=f"{info.format}/{info.subtype}")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = TARGET_RATE, subtype: str = "PCM_16") -> Path:
    """Write float samples (n,) or (channels, n) as WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = samples.T if samples.ndim == 2 else samples
    sf.write(path, data, sample_rate, subtype=subtype)
    return path


def channels_are_separate_speakers(audio: Audio, *, dominance_db: float = 10.0, active_dbfs: float = -45.0) -> bool:
    """Whether a stereo recording has one speaker per channel (telephony "dual mono").

    True when, in the frames where anyone speaks, one channel is typically much louder than the
    other; a mono signal copied to both channels, or a room recording, is not.
    """
    if audio.channels != 2:
        return False
    left = _frame_dbfs(audio.samples[0], audio.sample_rate)
    right = _frame_dbfs(audio.samples[1], audio.sample_rate)
    active = np.maximum(left, right) > active_dbfs
    if active.sum() < 10:
        return False
    return float(np.median(np.abs(left[active] - right[active]))) >= dominance_db
