from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from callqa.dataset import read_labelled_calls
from callqa.speech.audio import Audio, channels_are_separate_speakers, load_audio
from callqa.speech.segments import read_rttm
from callqa.speech.synth import pick_voices, read_reference, render_call, voice_pool, write_synth_call
from tests.builders import SHARED_DATA, make_labelled

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def call():
    return make_labelled(
        ("AGENT", "Добрый день, компания «ТехноСнаб», меня зовут Ольга. У кого сейчас берёте подшипники?"),
        ("CLIENT", "У Подшипник-Центра, уже лет пять. Но я вам скажу —"),
        ("AGENT", "Понимаю. А последняя закупка на какую сумму была?"),
        ("CLIENT", "На полтора миллиона примерно."),
        call_id="synth-1",
    )


def _frame_db(x: np.ndarray, rate: int, t0: float, t1: float) -> float:
    piece = x[int(t0 * rate) : int(t1 * rate)]
    return 20 * np.log10(np.sqrt(np.mean(piece**2)) + 1e-9)


def test_same_seed_same_audio_and_truth(call) -> None:
    a, b = render_call(call, seed=3), render_call(call, seed=3)
    assert np.array_equal(a.audio, b.audio) and a.segments == b.segments
    assert not np.array_equal(a.audio, render_call(call, seed=4).audio)


def test_stereo_truth_matches_the_channels(call) -> None:
    synth = render_call(call, seed=1, stereo=True, telephone=False)
    assert synth.audio.shape[0] == 2 and synth.sample_rate == 16000
    for channel, role in ((0, "AGENT"), (1, "CLIENT")):
        inside = [s for s in synth.segments if s.speaker == role]
        other = [s for s in synth.segments if s.speaker != role]
        loud = np.mean([_frame_db(synth.audio[channel], 16000, s.start, s.end) for s in inside])
        quiet = np.mean([_frame_db(synth.audio[channel], 16000, s.start + 0.05, s.end - 0.05)
                         for s in other if not any(i.start < s.end and s.start < i.end for i in inside)])  # fmt: skip
        assert loud - quiet > 25  # the other speaker is not on this channel
    audio = Audio(samples=synth.audio, source_rate=16000, source_format="test")
    assert channels_are_separate_speakers(audio)
    mono = Audio(samples=np.repeat(synth.audio.mean(axis=0, keepdims=True), 2, axis=0), source_rate=16000,
                 source_format="test")  # fmt: skip
    assert not channels_are_separate_speakers(mono)


def test_an_interruption_overlaps_the_interrupted_turn(call) -> None:
    synth = render_call(call, seed=2, overlap_share=0.0)
    interrupted, next_turn = synth.turns[1], synth.turns[2]
    assert next_turn.start < interrupted.end  # the text ends with "—": the agent cuts in
    assert synth.turns[0].end < synth.turns[1].start  # no other overlaps when overlap_share is 0
    assert all(t.speaker == ("AGENT" if k % 2 == 0 else "CLIENT") for k, t in enumerate(synth.turns))


def test_telephone_wav_decodes_as_8k_and_truth_files_round_trip(tmp_path: Path, call) -> None:
    synth = render_call(call, seed=1)
    paths = write_synth_call(synth, tmp_path)
    audio = load_audio(paths.wav)
    assert audio.source_rate == 8000 and audio.sample_rate == 16000
    assert audio.duration == pytest.approx(synth.duration, abs=0.01)
    back = read_rttm(paths.rttm)["synth-1"]
    truth = sorted(synth.segments, key=lambda s: (s.start, s.speaker))
    assert [s.speaker for s in back] == [s.speaker for s in truth]
    assert np.allclose([(s.start, s.end) for s in back], [(s.start, s.end) for s in truth], atol=2e-3)
    timed, turns, meta = read_reference(paths.json)
    assert timed.turns[1].start == pytest.approx(turns[1].start, abs=1e-3)
    assert meta["telephone"] and meta["sample_rate"] == 8000 and meta["channel_map"] is None
    assert json.loads(paths.json.read_text(encoding="utf-8"))["voices"]["AGENT"] != meta["voices"]["CLIENT"]


def test_voices_are_distinct(call) -> None:
    assert len({v.key for v in voice_pool()}) >= 24
    rng = random.Random(0)
    for _ in range(20):
        a, b = pick_voices(rng, 2)
        assert a.variant != b.variant


@pytest.mark.skipif(not (SHARED_DATA / "dev_calls.jsonl").exists(), reason="shared dev data not present")
def test_a_hand_written_dev_call_renders() -> None:
    dev = read_labelled_calls(SHARED_DATA / "dev_calls.jsonl")[0]
    synth = render_call(dev, seed=0)
    assert len(synth.turns) == len(dev.turns)
    assert synth.duration > 30
