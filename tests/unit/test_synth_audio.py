"""Synthetic call audio: the truth that comes with it must match what is audible."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callqa.dataset import read_labelled_calls
from callqa.errors import BadInput
from callqa.speech.audio import Audio, channels_are_separate_speakers, load_audio
from callqa.speech.segments import SpeakerSegment, read_rttm
from callqa.speech.synth import (
    SynthCall,
    Voice,
    _call_rng,
    pick_voices,
    read_reference,
    render_call,
    render_dataset,
    voice_pool,
    write_synth_call,
)
from tests.builders import SHARED_DATA, make_labelled

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

FRAME = 0.01


@pytest.fixture(scope="module")
def call():
    return make_labelled(
        ("AGENT", "Добрый день, компания «ТехноСнаб», меня зовут Ольга. У кого сейчас берёте подшипники?"),
        ("CLIENT", "У Подшипник-Центра, уже лет пять. Но я вам скажу —"),
        ("AGENT", "Понимаю. А последняя закупка на какую сумму была?"),
        ("CLIENT", "На полтора миллиона примерно."),
        ("AGENT", "Отлично, спасибо. Я пришлю вам предложение на почту, хорошо?"),
        ("CLIENT", "Да, присылайте."),
        call_id="synth-1",
    )


def _frames_db(x: np.ndarray, rate: int) -> np.ndarray:
    hop = int(rate * FRAME)
    n = len(x) // hop
    return 20 * np.log10(np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)) + 1e-9)


def _inside(segments: list[SpeakerSegment], n_frames: int, margin: float = 0.0) -> np.ndarray:
    """Frames covered by any segment, widened by ``margin`` seconds on both sides."""
    mask = np.zeros(n_frames, dtype=bool)
    for s in segments:
        mask[max(0, int((s.start - margin) / FRAME)) : int(np.ceil((s.end + margin) / FRAME))] = True
    return mask


def _overlaps(synth: SynthCall) -> list[tuple[int, int]]:
    """Consecutive turns of different speakers that overlap in time."""
    t = synth.turns
    return [(k, k + 1) for k in range(len(t) - 1) if t[k + 1].speaker != t[k].speaker and t[k + 1].start < t[k].end]


def test_same_seed_gives_identical_audio_and_rttm(tmp_path: Path, call) -> None:
    a, b = render_call(call, seed=3), render_call(call, seed=3)
    assert np.array_equal(a.audio, b.audio) and a.turns == b.turns
    pa, pb = write_synth_call(a, tmp_path / "a"), write_synth_call(b, tmp_path / "b")
    assert pa.rttm.read_text() == pb.rttm.read_text() and pa.wav.read_bytes() == pb.wav.read_bytes()
    other = render_call(call, seed=4)
    assert other.audio.shape != a.audio.shape or not np.array_equal(other.audio, a.audio)


def test_stereo_channels_carry_exactly_their_speaker(call) -> None:
    synth = render_call(call, seed=1, stereo=True, telephone=False)
    assert synth.audio.shape[0] == 2 and synth.sample_rate == 16000
    for channel, role in ((0, "AGENT"), (1, "CLIENT")):
        db = _frames_db(synth.audio[channel], synth.sample_rate)
        own = [s for s in synth.segments if s.speaker == role]
        inside, near = _inside(own, len(db)), _inside(own, len(db), margin=0.03)
        # a speaker's speech is loud on its channel and absent (only line noise) everywhere else
        floor = np.median(db[~near])
        assert np.median(db[inside]) - np.quantile(db[~near], 0.95) > 25
        for s in own:  # to the frame: silence just before each segment, speech in its first 30 ms
            k = round(s.start / FRAME)
            assert db[max(0, k - 10) : k - 2].max() < floor + 10 < floor + 14 < db[k : k + 3].max()
    assert channels_are_separate_speakers(Audio(samples=synth.audio, source_rate=16000, source_format="test"))
    mono = np.repeat(synth.audio.mean(axis=0, keepdims=True), 2, axis=0)
    assert not channels_are_separate_speakers(Audio(samples=mono, source_rate=16000, source_format="test"))


def test_mono_telephone_audio_is_silent_outside_the_truth(call) -> None:
    synth = render_call(call, seed=5, snr_db=30)
    assert synth.audio.shape[0] == 1 and synth.sample_rate == 8000
    db = _frames_db(synth.audio[0], synth.sample_rate)
    inside, near = _inside(synth.segments, len(db)), _inside(synth.segments, len(db), margin=0.03)
    floor = np.median(db[~near])
    assert np.quantile(db[~near], 0.95) < floor + 6  # outside the segments: nothing but the noise floor
    assert np.median(db[inside]) - floor > 20  # inside: speech well above it
    for s in synth.segments:  # and no segment is silence passed off as speech
        assert db[int(s.start / FRAME) : int(np.ceil(s.end / FRAME))].max() > floor + 15
    assert np.abs(synth.audio).max() < 1.0


def test_an_interruption_in_the_text_overlaps_in_the_audio(call) -> None:
    synth = render_call(call, seed=2, overlap_share=0.0)
    assert _overlaps(synth) == [(1, 2)]  # turn 1 ends with "—": the agent cuts in; no other overlap
    interrupted, cut_in = synth.turns[1], synth.turns[2]
    assert 0.3 - 1e-3 <= interrupted.end - cut_in.start <= 0.8 + 1e-3
    client = [s for s in synth.segments if s.speaker == "CLIENT" and s.start < cut_in.start + 1e-9]
    assert any(s.end > cut_in.start for s in client)  # the RTTM truth keeps the overlap
    busy = render_call(call, seed=2, overlap_share=1.0)
    assert len(_overlaps(busy)) == len(call.turns) - 1  # every speaker change overlaps


def test_telephone_wav_decodes_as_8k_and_the_truth_round_trips(tmp_path: Path, call) -> None:
    synth = render_call(call, seed=1)
    paths = write_synth_call(synth, tmp_path)
    assert sf.info(paths.wav).subtype == "ULAW"
    on_disk, rate = sf.read(paths.wav, dtype="float32", always_2d=True)
    assert rate == 8000 and np.array_equal(on_disk.T, synth.audio)  # memory holds what the file holds
    audio = load_audio(paths.wav)
    assert audio.source_rate == 8000 and audio.sample_rate == 16000
    assert audio.duration == pytest.approx(synth.duration, abs=0.01)
    assert audio.duration == pytest.approx(synth.turns[-1].end, abs=1.0)
    back = read_rttm(paths.rttm)["synth-1"]
    assert [s.speaker for s in back] == [s.speaker for s in synth.segments]
    assert np.allclose([(s.start, s.end) for s in back], [(s.start, s.end) for s in synth.segments], atol=2e-3)
    timed, turns, meta = read_reference(paths.json)
    assert turns == synth.turns and timed == synth.call
    assert [(t.start, t.end) for t in timed.turns] == [(t.start, t.end) for t in turns]
    assert meta["telephone"] and meta["sample_rate"] == 8000 and meta["channel_map"] is None
    assert meta["voices"]["AGENT"] != meta["voices"]["CLIENT"]
    assert Voice.from_key(meta["voices"]["AGENT"]) == synth.voices["AGENT"]
    escaping = replace(synth, call=synth.call.model_copy(update={"call_id": "../outside"}))
    with pytest.raises(BadInput, match="cannot name files"):
        write_synth_call(escaping, tmp_path / "x")


def test_voices_are_distinct_and_never_share_a_variant(call) -> None:
    pool = voice_pool()
    assert len({v.key for v in pool}) == len(pool) >= 24
    rng = random.Random(0)
    for _ in range(50):
        a, b = pick_voices(rng, 2)
        assert a.variant != b.variant
    agent, client = render_call(call, seed=7).voices.values()
    assert agent.variant != client.variant


def test_one_manager_speaks_every_call_with_his_voice(call) -> None:
    manager = Voice("m5", 50, 165)
    for seed in range(6):
        voices = render_call(call, seed=seed, agent_voice=manager).voices
        assert voices["AGENT"] == manager and voices["CLIENT"].variant != "m5"
    clash = next(s for s in range(500) if pick_voices(_call_rng(s, call.call_id), 2)[1].variant == "m5")
    assert render_call(call, seed=clash, agent_voice=manager).voices["CLIENT"].variant != "m5"


def test_awkward_transcripts_render(call) -> None:
    odd = make_labelled(
        ("AGENT", "-Алло, вы меня слышите? Заказ №15 на 20% больше [[x]]"),
        ("UNKNOWN", "…"),
        ("CLIENT", "Да - слышу, говорите."),
        call_id="odd",
    )
    synth = render_call(odd, seed=0, telephone=False)
    assert synth.turns[0].end - synth.turns[0].start > 1.0  # a leading "-" is not taken for an option
    assert synth.turns[1].start == synth.turns[1].end  # nothing to say: a silent turn, no segment
    assert {s.speaker for s in synth.segments} == {"AGENT", "CLIENT"}
    assert all(t.speaker in ("AGENT", "CLIENT") for t in synth.turns)


def test_a_dataset_renders_the_same_whatever_the_order(tmp_path: Path, call) -> None:
    other = make_labelled(("AGENT", "Здравствуйте, удобно говорить?"), ("CLIENT", "Да."), call_id="synth-2")
    forward = render_dataset([call, other], tmp_path / "f", seed=9, stereo=True, workers=2)
    backward = render_dataset([other, call], tmp_path / "b", seed=9, stereo=True, workers=1)
    assert [p.wav.name for p in forward] == ["synth-1.wav", "synth-2.wav"]
    for p in forward:
        twin = tmp_path / "b" / p.wav.name
        assert p.wav.read_bytes() == twin.read_bytes()
        assert read_reference(p.json)[2]["channel_map"] == {"AGENT": 0, "CLIENT": 1}
    assert len(backward) == 2
    with pytest.raises(BadInput, match="unique"):
        render_dataset([call, call], tmp_path / "d")


@pytest.mark.skipif(not (SHARED_DATA / "dev_calls.jsonl").exists(), reason="shared dev data not present")
def test_a_hand_written_dev_call_renders() -> None:
    dev = read_labelled_calls(SHARED_DATA / "dev_calls.jsonl")[0]
    synth = render_call(dev, seed=0, overlap_share=0.0)
    assert len(synth.turns) == len(dev.turns) and synth.duration > 30
    assert all(t.start is not None and t.end > t.start for t in synth.call.turns)
    assert [t.start for t in synth.turns] == sorted(t.start for t in synth.turns)
    interrupted = {
        k
        for k, t in enumerate(dev.turns[:-1])
        if t.text.rstrip().endswith("—") and dev.turns[k + 1].speaker != t.speaker
    }
    assert {k for k, _ in _overlaps(synth)} == interrupted
