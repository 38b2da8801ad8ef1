from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callqa.cli import parse_stereo_map
from callqa.errors import BadInput
from callqa.schemas import Speaker, Turn, Word
from callqa.speech.roles import roles_from_channels, roles_from_text, roles_from_voiceprint
from callqa.speech.segments import SpeakerSegment, read_rttm, write_rttm
from callqa.speech.transcript import SpeakerTurn, assign_words, words_to_turns
from callqa.speech.voiceprints import VoiceprintStore
from callqa.understanding.timing import timing_metrics


def _turn(speaker: str, start: float, end: float, text: str = "слово слово") -> Turn:
    return Turn(speaker=speaker, text=text, start=start, end=end)


def test_timing_metrics_of_a_small_call() -> None:
    turns = [
        _turn("AGENT", 0.0, 10.0, "раз два три четыре пять"),  # 10 s agent monologue
        _turn("CLIENT", 11.0, 15.0, "шесть семь"),
        _turn("AGENT", 14.0, 16.0),  # starts while the client speaks: an interruption, 1 s overlap
        _turn("CLIENT", 18.5, 20.0),  # after a 2.5 s pause
    ]
    m = timing_metrics(turns)
    assert m.duration == 20.0
    assert m.agent_talk_seconds == 12.0 and m.client_talk_seconds == 5.5
    assert m.agent_talk_share == round(12 / 17.5, 4)
    assert m.agent_longest_monologue == 10.0
    assert m.interruptions == 1
    assert (m.overlap_count, m.overlap_seconds) == (1, 1.0)
    assert (m.pause_count, m.longest_pause) == (2, 2.5)
    assert m.speaker_switches_per_minute == 9.0  # 3 switches in 20 s
    assert m.agent_words_per_minute == round(60 * 7 / 12, 1)


def test_no_timing_metrics_without_times() -> None:
    assert timing_metrics([Turn(speaker="AGENT", text="да")]) is None


def test_words_go_to_the_speaker_segment_they_fall_in() -> None:
    segments = [SpeakerSegment(0, 2, "spk0"), SpeakerSegment(2, 5, "spk1"), SpeakerSegment(5.5, 7, "spk0")]
    timed = [("алло", 0.1, 0.5), ("да", 2.2, 2.4), ("слушаю", 2.5, 3.0), ("ну", 5.6, 5.8), ("вот", 8.5, 8.7),
             ("так", 12.0, 12.2)]  # fmt: skip
    words = [Word(text=t, start=s, end=e) for t, s, e in timed]
    turns = words_to_turns(assign_words(words, segments))
    # "вот" (nearest segment spk0, 2.7 s later) joins; "так" after 3.3 s of silence starts a new turn
    assert [(t.speaker, t.text) for t in turns] == [
        ("spk0", "алло"), ("spk1", "да слушаю"), ("spk0", "ну вот"), ("spk0", "так")
    ]  # fmt: skip
    assert (turns[1].start, turns[1].end) == (2.2, 3.0)


def test_roles_by_channel_voiceprint_and_text() -> None:
    assert roles_from_channels(["ch0", "ch1"], agent_channel=1).roles == {"ch0": Speaker.CLIENT, "ch1": Speaker.AGENT}
    manager = np.array([1.0, 0.0, 0.0])
    found = roles_from_voiceprint(
        {"spk0": np.array([0.1, 0.99, 0.0]), "spk1": np.array([0.95, 0.3, 0.0])}, manager, threshold=0.5
    )
    assert found.roles == {"spk0": Speaker.CLIENT, "spk1": Speaker.AGENT} and found.method == "voiceprint"
    assert roles_from_voiceprint({"spk0": np.array([0.0, 1.0, 0.0])}, manager, threshold=0.5) is None

    def t(speaker: str, text: str) -> SpeakerTurn:
        return SpeakerTurn(speaker, [Word(text=w, start=0, end=1) for w in text.split()])

    turns = [
        t("spk0", "Алло."),
        t("spk1", "Добрый день, меня зовут Ирина, компания ЭкоПак. Кто у вас отвечает за закупки?"),
        t("spk0", "Я, слушаю."),
        t("spk1", "А когда планируете следующую закупку?"),
    ]
    assert roles_from_text(turns).roles == {"spk0": Speaker.CLIENT, "spk1": Speaker.AGENT}
    # a vendor calling in introduces his company and asks; the agent answered the phone first
    spam = [
        t("spk0", "отдел продаж слушаю вас"),
        t("spk1", "добрый день меня зовут карина компания лидмастер могу я поговорить с директором"),
        t("spk0", "руководитель занят что вы хотели"),
        t("spk1", "мы предлагаем базы клиентов кто у вас отвечает за маркетинг"),
    ]
    assert roles_from_text(spam).roles == {"spk0": Speaker.AGENT, "spk1": Speaker.CLIENT}


def test_voiceprint_store_round_trip(tmp_path: Path) -> None:
    store = VoiceprintStore(tmp_path)
    vp = store.save("ivanov", "titanet", [np.array([3.0, 4.0]), np.array([4.0, 3.0])], ["a.wav", "b.wav"], 42.0)
    assert np.isclose(np.linalg.norm(vp.array()), 1.0)
    assert store.load("ivanov").vector == vp.vector
    assert store.load("ivanov", model="another-model") is None  # never compare prints across models
    assert store.managers() == ["ivanov"]
    with pytest.raises(BadInput, match="manager id"):
        store.save("../etc", "titanet", [np.ones(2)], [], 1.0)
    with pytest.raises(BadInput, match="no speech"):
        store.save("petrov", "titanet", [], [], 0.0)


def test_stereo_map_parsing() -> None:
    assert parse_stereo_map("agent=0,client=1") == 0
    assert parse_stereo_map("client=0, agent=1") == 1
    assert parse_stereo_map(None) is None
    for bad in ("agent=0,client=0", "agent=2", "left=0", "agent"):
        with pytest.raises(BadInput, match="stereo-map"):
            parse_stereo_map(bad)


def test_rttm_round_trip(tmp_path: Path) -> None:
    segs = [SpeakerSegment(0.5, 2.0, "AGENT"), SpeakerSegment(1.8, 3.25, "CLIENT")]
    path = write_rttm(tmp_path / "c.rttm", "call-1", segs)
    assert read_rttm(path) == {"call-1": segs}
