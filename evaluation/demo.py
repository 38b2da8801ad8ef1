"""``make demo``: analyse the hand-written dev calls (or generated ones) and score the answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from callqa.dataset import expand_paths, read_labelled_many, write_labelled_calls
from callqa.models import ZERO_SHOT, load_answer_extractor
from callqa.questionnaire import load_questionnaire
from callqa.render import answers_table, transcript_table
from callqa.schemas import LabelledCall, Questionnaire
from callqa.settings import get_settings
from evaluation.harness import Evaluation, evaluate_answers
from evaluation.metrics import AnswerScorer
from evaluation.report import write_report
from evaluation.speech import SpeechEvaluation

FALLBACK_CALLS = 30


def _demo_data(data: Sequence[Path] | None, console: Console) -> list[Path]:
    settings = get_settings()
    paths = [p for p in expand_paths(data or settings.dev_data) if p.exists()]
    if paths:
        return paths
    from callqa.synthetic import generate_calls

    path = settings.home / "demo" / "synthetic_calls.jsonl"
    write_labelled_calls(path, generate_calls(FALLBACK_CALLS, seed=0))
    console.print(
        f"[yellow]no dev calls found ({', '.join(settings.dev_data)}); generated {FALLBACK_CALLS} at {path}[/]"
    )
    return [path]


def run_demo(data: Sequence[Path] | None, questionnaire: Path | None, console: Console) -> Evaluation:
    """Print a table per call (question → answer, value, confidence, gold) and the answer F1."""
    q = load_questionnaire(questionnaire)
    paths = _demo_data(data, console)
    calls = read_labelled_many(paths, q)
    evaluation = evaluate_answers(calls, q, load_answer_extractor(ZERO_SHOT, q), data=paths, halves=True)
    matches: dict[str, dict[str, bool]] = {}
    for o in evaluation.outcomes:
        matches.setdefault(o.call_id, {})[o.question_id] = o.correct
    for call, result in zip(calls, evaluation.results, strict=True):
        console.print(answers_table(result, q, labelled=call, matches=matches[call.call_id]))
    s = evaluation.summary
    console.rule("[bold]zero-shot answer extraction")
    console.print(
        f"{s.n_calls} calls from {', '.join(map(str, paths))}\n"
        f"[bold]answer F1 {s.answer_f1:.3f}[/] (precision {s.answer_precision:.3f}, recall {s.answer_recall:.3f}), "
        f"accuracy {s.answer_accuracy:.3f}, {1000 * s.seconds_per_call:.0f} ms per call"
    )
    for name, m in (s.halves or {}).items():
        console.print(f"  {name} half: answer F1 {m.answer_f1:.3f} on {m.n_calls} calls")
    report = write_report(evaluation, get_settings().home / "reports" / "demo")
    console.print(f"report: {report}")
    return evaluation


AUDIO_DEMO_SEED = 2026  # the synthetic training corpus of build-models uses seed 0: this call is unseen
AUDIO_DEMO_MODELS = ("titanet_small.nemo", "fastconformer_ctc_tiny.nemo")


def _demo_call(questionnaire: Questionnaire) -> LabelledCall:
    """An unseen generated sales call with many answers (the most informative to listen to)."""
    from callqa.synthetic import generate_calls

    calls = generate_calls(12, seed=AUDIO_DEMO_SEED, start_id=900_000)
    known = {q.id for q in questionnaire.questions}
    return max(calls, key=lambda c: (sum(1 for k, v in c.answers.items() if v and k in known), -len(c.turns)))


def run_audio_demo(questionnaire: Path | None, console: Console) -> SpeechEvaluation | None:
    """Speak one unseen synthetic call as a mono 8 kHz phone recording, then analyse the audio.

    The voices are espeak-ng's, so the ASR is the NeMo CTC model that ``callqa speech build-models``
    trained on such voices (faster-whisper's Whisper base does not understand them; on real calls it
    is the default). Prints the diarized, word-timed transcript, the answers against the labels and
    this call's DER, WER and role accuracy.
    """
    from callqa.pipeline import CallAnalyzer
    from callqa.speech.synth import render_call, write_synth_call
    from evaluation.speech import SpeechSample, evaluate_speech

    settings = get_settings()
    missing = [m for m in AUDIO_DEMO_MODELS if not (settings.models_dir / m).is_file()]
    if missing:
        console.print(
            f"[yellow]audio demo skipped: {', '.join(missing)} not in {settings.models_dir}; "
            "run `callqa speech build-models` (or `make demo`, which builds them)[/]"
        )
        return None
    q = load_questionnaire(questionnaire)
    call = _demo_call(q)
    synth = render_call(call, seed=AUDIO_DEMO_SEED, telephone=True)
    paths = write_synth_call(synth, settings.home / "demo" / "audio")
    console.rule("[bold]audio: one synthetic phone call")
    console.print(
        f"{paths.wav}: {synth.duration:.0f} s, mono, {synth.sample_rate} Hz μ-law, "
        f"voices {', '.join(f'{r} {v.key}' for r, v in synth.voices.items())}, SNR {synth.snr_db:.0f} dB"
    )
    speech = settings.speech.model_copy(update={"asr": "nemo", "diarizer": "clustering"})
    analyzer = CallAnalyzer(q, settings.model_copy(update={"speech": speech}))
    sample = SpeechSample(call.call_id, paths.wav, paths.rttm, paths.json, agent_channel=None)
    evaluation = evaluate_speech([sample], analyzer, progress=False)
    result, metrics = evaluation.results[0], evaluation.per_call[0]
    console.print(transcript_table(result, limit=16))
    scorer = AnswerScorer(q)
    matches = {o.question_id: o.correct for o in scorer.add(call, result.answers)}
    console.print(answers_table(result, q, labelled=call, matches=matches))
    assert result.audio is not None
    speakers = sorted({t.speaker.value for t in result.turns})
    console.print(
        f"speakers {', '.join(speakers)} (roles by {result.audio.roles_method}); "
        f"DER {metrics.der:.1%} (collar 0.25 s), roles right {metrics.role_accuracy or 0:.1%} of speech time; "
        f"WER {metrics.wer or 0:.1%}, CER {metrics.cer or 0:.1%}; "
        f"answer F1 from audio {evaluation.answer_f1 or 0:.3f} "
        f"(from the text {evaluation.answer_f1_transcript or 0:.3f}); "
        f"{1 / metrics.real_time_factor:.1f}× faster than real time"
    )
    return evaluation
