"""The speech pipeline's orchestration, with stand-in stages (the real models have their own tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callqa.errors import BadInput
from callqa.schemas import Speaker, Word
from callqa.settings import SpeechSettings
from callqa.speech.audio import Audio
from callqa.speech.pipeline import SpeechPipeline
from callqa.speech.segments import Segment, SpeakerSegment
from callqa.speech.voiceprints import VoiceprintStore

RATE = 16000
SCRIPT = [  # (start, end, speaker, text)
    (0.5, 3.0, "A", "Добрый день, меня зовут Ольга, компания ТехноСнаб. У кого сейчас берёте подшипники?"),
    (3.4, 5.0, "B", "У Подшипник-Центра берём."),
    (5.3, 6.5, "A", "А когда следующая закупка?"),
    (6.8, 8.0, "B", "В марте."),
]


class FakeVAD:
    def __call__(self, samples: np.ndarray, offset: float = 0.0) -> list[Segment]:
        active = np.abs(samples) > 0.01
        segs, start = [], None
        for i in range(0, len(samples), 160):
            on = active[i : i + 160].any()
            if on and start is None:
                start = i / RATE
            if not on and start is not None:
                segs.append(Segment(start, i / RATE))
                start = None
        if start is not None:
            segs.append(Segment(start, len(samples) / RATE))
        return segs


class FakeTranscriber:
    name = "fake-asr"

    def __init__(self, script: list = SCRIPT) -> None:
        self.script = script

    def transcribe(self, samples: np.ndarray, regions: list[Segment]) -> list[Word]:
        words = []
        for start, end, _, text in self.script:
            if (
                any(r.start <= (start + end) / 2 <= r.end for r in regions)
                and np.abs(samples[int(start * RATE) : int(end * RATE)]).max() > 0.01
            ):
                parts = text.split()
                step = (end - start) / len(parts)
                words += [Word(text=w, start=start + k * step, end=start + (k + 1) * step) for k, w in enumerate(parts)]
        return words


class FakeDiarizer:
    name = "fake-diarizer"

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.calls = 0

    def __call__(self, samples: np.ndarray, speech: list[Segment], num_speakers: int | None) -> list[SpeakerSegment]:
        self.calls += 1
        return [SpeakerSegment(s, e, self.labels[who]) for s, e, who, _ in SCRIPT]


class FakeEmbedder:
    name = "fake-voice"

    def embed(self, samples: np.ndarray, regions: list[Segment]) -> np.ndarray:
        # speaker A speaks in the first and third slots
        vec = (
            np.array([1.0, 0.0]) if any(r.start < 1.0 or 5.0 < r.start < 6.0 for r in regions) else np.array([0.0, 1.0])
        )
        return vec


def _audio(stereo: bool) -> Audio:
    rng = np.random.default_rng(1)
    chans = np.zeros((2 if stereo else 1, int(9 * RATE)), dtype=np.float32)
    for start, end, who, _ in SCRIPT:
        ch = (0 if who == "A" else 1) if stereo else 0
        chans[ch, int(start * RATE) : int(end * RATE)] = 0.2 * rng.standard_normal(int(end * RATE) - int(start * RATE))
    return Audio(samples=chans, source_rate=8000, source_format="WAV/ULAW")


def _pipeline(
    diarizer: FakeDiarizer, tmp_path: Path | None = None, embed: bool = False, script: list = SCRIPT
) -> SpeechPipeline:
    return SpeechPipeline(
        SpeechSettings(),
        FakeVAD(),  # type: ignore[arg-type]
        lambda: FakeTranscriber(script),
        lambda: diarizer,
        FakeEmbedder if embed else None,
        VoiceprintStore(tmp_path) if tmp_path else None,
    )


def test_mono_call_is_diarized_transcribed_and_roles_found_from_text() -> None:
    diarizer = FakeDiarizer({"A": "spk1", "B": "spk0"})
    result = _pipeline(diarizer).run(_audio(stereo=False), call_id="m1")
    assert diarizer.calls == 1
    assert [t.speaker for t in result.call.turns] == [Speaker.AGENT, Speaker.CLIENT, Speaker.AGENT, Speaker.CLIENT]
    assert result.call.turns[1].text == "У Подшипник-Центра берём."
    assert result.call.turns[1].start == pytest.approx(3.4) and result.call.turns[1].end == pytest.approx(5.0)
    assert result.roles.method == "text" and not result.separate_channels


def test_stereo_uses_channels_and_the_channel_map_without_diarizing() -> None:
    diarizer = FakeDiarizer({"A": "spk0", "B": "spk1"})
    result = _pipeline(diarizer).run(_audio(stereo=True), call_id="s1", agent_channel=0)
    assert diarizer.calls == 0
    assert result.separate_channels and result.roles.method == "channel_map"
    assert [t.speaker for t in result.call.turns] == [Speaker.AGENT, Speaker.CLIENT, Speaker.AGENT, Speaker.CLIENT]
    assert {s.speaker for s in result.segments} == {"ch0", "ch1"}


def test_enrolled_voiceprint_finds_the_manager_who_does_not_introduce_himself(tmp_path: Path) -> None:
    VoiceprintStore(tmp_path).save("olga", "fake-voice", [np.array([1.0, 0.0])], ["old.wav"], 30.0)
    # the manager never introduces himself; the client asks all the questions
    script = [(s, e, w, "Ну что, слушаю вас." if w == "A" else "Кто вы такие? Что вам нужно? Когда?")
              for s, e, w, _ in SCRIPT]  # fmt: skip
    pipeline = _pipeline(FakeDiarizer({"A": "spk0", "B": "spk1"}), tmp_path, embed=True, script=script)
    result = pipeline.run(_audio(stereo=False), call_id="v1", manager_id="olga")
    assert result.roles.method == "voiceprint"
    assert result.call.turns[0].speaker == Speaker.AGENT


def test_no_speech_and_bad_channel_are_clear_errors() -> None:
    pipeline = _pipeline(FakeDiarizer({"A": "spk0", "B": "spk1"}))
    silent = Audio(samples=np.zeros((1, RATE), dtype=np.float32), source_rate=RATE, source_format="WAV")
    with pytest.raises(BadInput, match="no speech"):
        pipeline.run(silent, call_id="x")
    with pytest.raises(BadInput, match="agent channel 1 does not exist"):
        pipeline.run(_audio(stereo=False), call_id="x", agent_channel=1)
