"""``make demo``: analyse the hand-written dev calls (or generated ones) and score the answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from callqa.dataset import expand_paths, read_labelled_many, write_labelled_calls
from callqa.models import ZERO_SHOT, load_answer_extractor
from callqa.questionnaire import load_questionnaire
from callqa.render import answers_table
from callqa.settings import get_settings
from evaluation.harness import Evaluation, evaluate_answers
from evaluation.report import write_report

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
