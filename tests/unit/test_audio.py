from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callqa.errors import BadInput
from callqa.speech.audio import channels_are_separate_speakers, load_audio

RNG = np.random.default_rng(0)


def bursts(seconds: float, rate: int, on: list[tuple[float, float]], level: float = 0.3) -> np.ndarray:
    """Noise bursts (speech stand-ins) at the given times, silence elsewhere."""
    x = np.zeros(int(seconds * rate), dtype=np.float32)
    for a, b in on:
        x[int(a * rate) : int(b * rate)] = level * RNG.standard_normal(int(b * rate) - int(a * rate))
    return x


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate"),
    [
        ("WAV", "PCM_16", 8000),
        ("WAV", "ULAW", 8000),
        ("FLAC", "PCM_16", 44100),
        ("OGG", "OPUS", 48000),
        ("MP3", None, 22050),
    ],
)
def test_formats_and_rates_become_16k_float(tmp_path: Path, fmt: str, subtype: str | None, rate: int) -> None:
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, bursts(3.0, rate, [(0.5, 2.5)]), rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and audio.source_rate == rate
    assert audio.samples.dtype == np.float32 and audio.channels == 1
    assert audio.duration == pytest.approx(3.0, abs=0.08)


def test_stereo_keeps_channels(tmp_path: Path) -> None:
    left, right = bursts(4, 8000, [(0, 1), (2, 3)]), bursts(4, 8000, [(1, 2), (3, 4)])
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000)
    audio = load_audio(path)
    assert audio.channels == 2
    assert channels_are_separate_speakers(audio)


def test_mono_copied_to_two_channels_is_not_two_speakers(tmp_path: Path) -> None:
    mono = bursts(4, 16000, [(0, 1), (1.5, 3)])
    path = tmp_path / "d.wav"
    sf.write(path, np.stack([mono, mono], axis=1), 16000)
    assert not channels_are_separate_speakers(load_audio(path))


def _wav_bytes(tmp_path: Path, samples: np.ndarray, rate: int = 16000) -> bytes:
    path = tmp_path / "x.wav"
    sf.write(path, samples, rate)
    return path.read_bytes()


def test_bad_audio_is_refused_with_a_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty file"):
        load_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("это не звук, а текст", encoding="utf-8")
    with pytest.raises(BadInput, match="not a readable audio file"):
        load_audio(text)
    whole = _wav_bytes(tmp_path, bursts(2, 16000, [(0, 2)]))
    with pytest.raises(BadInput, match="truncated WAV"):
        load_audio(whole[: len(whole) // 2], name="cut.wav")
    with pytest.raises(BadInput, match="zero duration"):
        load_audio(_wav_bytes(tmp_path, np.zeros(0, dtype=np.float32)), name="zero.wav")
    with pytest.raises(BadInput, match="longer than the limit of 1 s"):
        load_audio(whole, max_seconds=1.0, name="long.wav")
    with pytest.raises(BadInput, match="silent"):
        load_audio(_wav_bytes(tmp_path, np.zeros(16000, dtype=np.float32)), name="silence.wav")
    with pytest.raises(BadInput, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_more_than_two_channels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    sf.write(path, np.tile(bursts(1, 16000, [(0, 1)])[:, None], (1, 6)), 16000)
    with pytest.raises(BadInput, match="expected mono or stereo, got 6 channels"):
        load_audio(path)
