"""``callqa evaluate-speech``: DER/JER of diarization, WER/CER of ASR, role accuracy, speed.

A data directory holds recordings with their truth: ``<id>.wav`` (or mp3/ogg/flac),
``<id>.rttm`` (who spoke when; speaker labels AGENT/CLIENT make role accuracy measurable) and,
for WER, ``<id>.json`` with the reference call (as ``callqa generate --audio`` writes it).
DER uses pyannote.metrics with the standard 0.25 s collar and without; overlaps are scored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jiwer
from pyannote.core import Segment as PSegment
from pyannote.core import Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
from pydantic import BaseModel, Field
from rich.progress import track

from callqa.errors import BadInput
from callqa.pipeline import AUDIO_SUFFIXES, CallAnalyzer
from callqa.schemas import CallResult, LabelledCall, Speaker
from callqa.speech.segments import SpeakerSegment, read_rttm, to_annotation
from callqa.synthetic import asr_text
from evaluation.metrics import AnswerScorer

COLLAR = 0.25


@dataclass
class SpeechSample:
    uri: str
    audio: Path
    rttm: Path
    reference: Path | None
    agent_channel: int | None


class SpeechScores(BaseModel):
    """What is scored per call and overall."""

    der: float
    der_no_collar: float
    jer: float
    wer: float | None
    cer: float | None
    role_accuracy: float | None
    real_time_factor: float


class CallSpeechMetrics(SpeechScores):
    uri: str
    duration: float
    roles_method: str


class SpeechEvaluation(SpeechScores):
    n_calls: int
    audio_seconds: float
    answer_f1: float | None = None
    """Answers extracted from the recording, scored against the reference labels."""
    answer_f1_transcript: float | None = None
    """The same extractor on the reference transcript: the gap is what speech recognition costs."""
    diarizer: str | None
    asr: str
    per_call: list[CallSpeechMetrics]
    results: list[CallResult] = Field(default_factory=list, exclude=True)
    """The analysed calls (for display; not part of the JSON)."""


def find_samples(data_dir: Path, *, use_channel_map: bool = True) -> list[SpeechSample]:
    """Recordings in ``data_dir`` that have an RTTM beside them."""
    if not data_dir.is_dir():
        raise BadInput(f"{data_dir}: not a directory")
    samples = []
    for audio in sorted(p for p in data_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
        rttm = audio.with_suffix(".rttm")
        if not rttm.is_file():
            continue
        ref = audio.with_suffix(".json")
        agent_channel = None
        if ref.is_file() and use_channel_map:
            channel_map = json.loads(ref.read_text(encoding="utf-8")).get("channel_map")
            agent_channel = channel_map.get("AGENT") if channel_map else None
        samples.append(SpeechSample(audio.stem, audio, rttm, ref if ref.is_file() else None, agent_channel))
    if not samples:
        raise BadInput(f"{data_dir}: no recordings with an .rttm beside them")
    return samples


def _reference_call(path: Path) -> LabelledCall:
    """The labelled call of a reference written by ``callqa generate --audio``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "call" not in data:
        raise BadInput(f"{path}: not a reference call (needs a 'call' object)")
    return LabelledCall.model_validate(data["call"])


def _role_accuracy(reference: Sequence[SpeakerSegment], turns: Sequence) -> float | None:
    """Share of the reference AGENT/CLIENT speech time covered by a turn of the same role."""
    roles = {Speaker.AGENT.value, Speaker.CLIENT.value}
    if not reference or not {s.speaker for s in reference} <= roles:
        return None
    total = right = 0.0
    for seg in reference:
        total += seg.duration
        for t in turns:
            overlap = min(seg.end, t.end) - max(seg.start, t.start)
            if overlap > 0 and t.speaker.value == seg.speaker:
                right += overlap
    return right / total if total else None


def evaluate_speech(samples: Sequence[SpeechSample], analyzer: CallAnalyzer, progress: bool = True) -> SpeechEvaluation:
    """Run the speech pipeline on each recording and score it against its truth."""
    der, der0, jer = (
        DiarizationErrorRate(collar=COLLAR, skip_overlap=False),
        DiarizationErrorRate(collar=0.0, skip_overlap=False),
        JaccardErrorRate(collar=COLLAR, skip_overlap=False),
    )
    refs_text, hyps_text, per_call, results = [], [], [], []
    audio_seconds = compute_seconds = 0.0
    role_time = role_right = 0.0
    diarizer = asr = None
    questionnaire = analyzer.questionnaire
    from_audio, from_text = AnswerScorer(questionnaire), AnswerScorer(questionnaire)
    for sample in track(samples, description="evaluating speech", disable=not progress):
        reference = read_rttm(sample.rttm).get(sample.uri) or next(iter(read_rttm(sample.rttm).values()), [])
        labelled = _reference_call(sample.reference) if sample.reference is not None else None
        started = time.perf_counter()
        result, speech = analyzer.audio_detailed(
            sample.audio,
            call_id=sample.uri,
            agent_channel=sample.agent_channel,
            started_at=labelled.started_at if labelled else None,
        )
        elapsed = time.perf_counter() - started
        assert result.audio is not None
        results.append(result)
        duration = result.audio.duration
        audio_seconds += duration
        compute_seconds += elapsed
        diarizer, asr = result.audio.diarizer, result.audio.asr
        uem = Timeline([PSegment(0, duration)])
        ref_ann, hyp_ann = to_annotation(reference), to_annotation(speech.segments)
        call_der = der(ref_ann, hyp_ann, uem=uem)
        call_der0 = der0(ref_ann, hyp_ann, uem=uem)
        call_jer = jer(ref_ann, hyp_ann, uem=uem)
        wer = cer = None
        if labelled is not None:
            from_audio.add(labelled, result.answers)
            from_text.add(labelled, analyzer.transcript(labelled.to_call()).answers)
            ref_text = asr_text(" ".join(t.text for t in labelled.turns))
            hyp_text = asr_text(" ".join(t.text for t in result.turns))
            refs_text.append(ref_text)
            hyps_text.append(hyp_text)
            wer, cer = jiwer.wer(ref_text, hyp_text), jiwer.cer(ref_text, hyp_text)
        roles = _role_accuracy(reference, result.turns)
        if roles is not None:
            total = sum(s.duration for s in reference)
            role_time += total
            role_right += roles * total
        per_call.append(
            CallSpeechMetrics(
                uri=sample.uri,
                duration=round(duration, 2),
                der=call_der,
                der_no_collar=call_der0,
                jer=call_jer,
                wer=wer,
                cer=cer,
                role_accuracy=roles,
                roles_method=result.audio.roles_method,
                real_time_factor=elapsed / duration,
            )
        )
    return SpeechEvaluation(
        n_calls=len(per_call),
        der=abs(der),
        der_no_collar=abs(der0),
        jer=abs(jer),
        wer=jiwer.wer(refs_text, hyps_text) if refs_text else None,
        cer=jiwer.cer(refs_text, hyps_text) if refs_text else None,
        role_accuracy=role_right / role_time if role_time else None,
        real_time_factor=compute_seconds / audio_seconds if audio_seconds else 0.0,
        audio_seconds=round(audio_seconds, 1),
        answer_f1=from_audio.result().answer_f1 if from_audio.n_calls else None,
        answer_f1_transcript=from_text.result().answer_f1 if from_text.n_calls else None,
        diarizer=diarizer,
        asr=asr or "",
        per_call=per_call,
        results=results,
    )


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def write_speech_report(evaluation: SpeechEvaluation, data_dir: Path, out_dir: Path) -> Path:
    """A Markdown report: overall and per-call DER, JER, WER, CER, role accuracy, speed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    e = evaluation
    lines = [
        "# Speech evaluation",
        "",
        f"- data: `{data_dir}` — {e.n_calls} recordings, {e.audio_seconds:.0f} s of audio",
        f"- diarizer: {e.diarizer or 'channels'}; ASR: {e.asr}",
        f"- evaluated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- speed: {1 / e.real_time_factor if e.real_time_factor else 0:.1f}× faster than real time end to end",
        f"- answer F1 from the audio: {_num(e.answer_f1)} (from the reference transcript: "
        f"{_num(e.answer_f1_transcript)})",
        "",
        "| | DER (collar 0.25 s) | DER (no collar) | JER | WER | CER | roles |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| **all** | **{_pct(e.der)}** | {_pct(e.der_no_collar)} | {_pct(e.jer)} | {_pct(e.wer)} | "
        f"{_pct(e.cer)} | {_pct(e.role_accuracy)} |",
    ]
    for c in e.per_call:
        lines.append(
            f"| {c.uri} | {_pct(c.der)} | {_pct(c.der_no_collar)} | {_pct(c.jer)} | {_pct(c.wer)} | {_pct(c.cer)} | "
            f"{_pct(c.role_accuracy)} ({c.roles_method}) |"
        )
    path = out_dir / "speech_report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
