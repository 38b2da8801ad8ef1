from __future__ import annotations

import shutil

import numpy as np
import pytest
import soxr

from callqa.speech.vad import SileroVAD, VADConfig, is_narrowband


def _coverage(truth, hyp, duration: float) -> tuple[float, float]:
    """(recall, precision) of speech time at 10 ms resolution."""
    n = int(duration * 100) + 1
    t, h = np.zeros(n, bool), np.zeros(n, bool)
    for s in truth:
        t[int(s.start * 100) : int(s.end * 100)] = True
    for s in hyp:
        h[int(s.start * 100) : int(s.end * 100)] = True
    return (t & h).sum() / t.sum(), (t & h).sum() / max(1, h.sum())


def test_narrowband_is_told_from_wideband() -> None:
    rng = np.random.default_rng(0)
    wide = rng.normal(0, 0.1, 16_000 * 5).astype(np.float32)
    phone = soxr.resample(rng.normal(0, 0.1, 8_000 * 5).astype(np.float32), 8_000, 16_000)
    assert not is_narrowband(wide)
    assert is_narrowband(phone)
    assert not is_narrowband(np.zeros(16_000, np.float32))  # silence carries no band
    assert not is_narrowband(np.zeros(10, np.float32))


def test_silence_has_no_speech_and_offsets_shift() -> None:
    vad = SileroVAD()
    assert vad(np.zeros(16_000 * 3, np.float32)) == []


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_noisy_phone_call_keeps_its_speech() -> None:
    """A call on which Silero at 16 kHz lost 83% of the speech after 15 s (white line noise, 25 dB SNR)."""
    from callqa.speech.synth import render_call
    from callqa.synthetic import generate_calls

    call = generate_calls(1, seed=0, start_id=181)[0]
    synth = render_call(call, seed=0, telephone=True)
    samples = soxr.resample(synth.audio[0], synth.sample_rate, 16_000).astype(np.float32)
    found = SileroVAD()(samples)
    recall, precision = _coverage(synth.segments, found, len(samples) / 16_000)
    assert recall > 0.95 and precision > 0.8
    shifted = SileroVAD(VADConfig(narrowband=True))(samples, offset=10.0)
    assert [round(s.start - 10.0, 3) for s in shifted] == [round(s.start, 3) for s in found]
