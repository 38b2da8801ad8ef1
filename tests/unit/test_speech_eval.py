from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callqa.pipeline import CallAnalyzer
from callqa.questionnaire import load_questionnaire
from callqa.schemas import AudioInfo, CallMetrics, CallResult, Speaker, Turn
from callqa.speech.pipeline import SpeechResult
from callqa.speech.roles import RoleAssignment
from callqa.speech.segments import SpeakerSegment, read_rttm
from callqa.speech.synth import read_reference, render_dataset
from evaluation.speech import evaluate_speech, find_samples
from tests.builders import make_labelled

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


class TruthAnalyzer:
    """Answers with the ground truth, optionally swapping roles and labels of some segments."""

    def __init__(self, data: Path, swap_every: int = 0) -> None:
        self.data = data
        self.swap_every = swap_every
        self.text = CallAnalyzer(load_questionnaire())
        self.questionnaire = self.text.questionnaire
        self.transcript = self.text.transcript

    def audio_detailed(self, path: Path, call_id: str, agent_channel: int | None = None, started_at=None):
        ref = read_rttm(path.with_suffix(".rttm"))[call_id]
        call, turns, meta = read_reference(path.with_suffix(".json"))
        swap = {"AGENT": "CLIENT", "CLIENT": "AGENT"}
        labels = [
            swap[s.speaker] if self.swap_every and k % self.swap_every == 0 else s.speaker for k, s in enumerate(ref)
        ]
        segs = [SpeakerSegment(s.start, s.end, "x" + label) for s, label in zip(ref, labels, strict=True)]
        hyp_turns = [Turn(speaker=Speaker(t.speaker), text=t.text, start=t.start, end=t.end) for t in turns]
        metrics = CallMetrics(agent_turns=0, client_turns=0, agent_words=0, client_words=0, agent_word_share=0,
                              agent_questions=0, agent_question_rate=0, filler_words={}, filler_word_rate=0,
                              value_reducing_words={}, strong_words={}, bad_words={}, topics_covered=[],
                              topics_missing=[])  # fmt: skip
        info = AudioInfo(
            duration=meta["duration"], channels=1, source_rate=8000, source_format="WAV",
            separate_channels=False, diarizer="truth", asr="truth", roles_method="text", stage_seconds={},
        )  # fmt: skip
        answers = [] if self.swap_every else self.transcript(call.to_call()).answers  # a broken pipeline finds none
        result = CallResult(call_id=call_id, questionnaire="q", turns=hyp_turns, answers=answers, metrics=metrics,
                            model="t", audio=info)  # fmt: skip
        return result, SpeechResult(
            call=call.to_call(), segments=segs, roles=RoleAssignment({}, "text"), separate_channels=False
        )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech")
    calls = [
        make_labelled(("AGENT", "Добрый день, у кого берёте кабель?"), ("CLIENT", "У Севзапкабеля, уже три года."),
                      ("AGENT", "А когда следующая закупка?"), ("CLIENT", "В марте, 15 числа."), call_id=f"e{i}",
                      answers={"current_supplier": (1, "Севзапкабеля", "Севзапкабель")})
        for i in range(2)
    ]  # fmt: skip
    render_dataset(calls, out, seed=1)
    return out


def test_the_truth_scores_perfectly(data: Path) -> None:
    e = evaluate_speech(find_samples(data), TruthAnalyzer(data), progress=False)  # type: ignore[arg-type]
    assert e.n_calls == 2
    assert e.der == pytest.approx(0.0, abs=1e-9) and e.jer == pytest.approx(0.0, abs=1e-9)
    assert e.wer == 0.0 and e.cer == 0.0  # digits in the reference are normalised the same way on both sides
    assert e.role_accuracy == pytest.approx(1.0, abs=1e-3)  # times are stored to the millisecond
    assert e.answer_f1 == e.answer_f1_transcript and e.answer_f1 is not None and e.answer_f1 > 0.5
    assert len(e.results) == 2 and "results" not in e.model_dump()


def test_errors_raise_der(data: Path) -> None:
    e = evaluate_speech(find_samples(data), TruthAnalyzer(data, swap_every=2), progress=False)  # type: ignore[arg-type]
    assert 0.1 < e.der < 0.9
    assert e.der_no_collar >= e.der  # the collar forgives boundary errors, never adds any
    assert e.answer_f1 == 0.0 and e.answer_f1_transcript is not None and e.answer_f1_transcript > 0.5


def test_a_directory_without_truth_is_refused(tmp_path: Path) -> None:
    from callqa.errors import BadInput

    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(BadInput, match=r"no recordings with an \.rttm"):
        find_samples(tmp_path)
