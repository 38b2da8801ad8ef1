"""``callqa evaluate | demo | bench``: the evaluation app's commands, plugged into the core CLI."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from callqa.cli import AsrOpt, DiarizerOpt, QuestionnaireOpt, dump_json, err, exit_on_error, settings_with_backends
from callqa.dataset import expand_paths, read_labelled_many
from callqa.errors import BadInput
from callqa.models import ZERO_SHOT, load_answer_extractor, load_classifier
from callqa.questionnaire import load_questionnaire
from callqa.settings import get_settings

DataOpt = Annotated[
    list[Path],
    typer.Option("--data", "-d", help="labelled-call JSONL (repeatable; globs allowed)"),
]


def evaluate_command(
    data: DataOpt,
    model: Annotated[
        str, typer.Option("--model", "-m", help="zero-shot | champion | models:/NAME/VERSION | a model directory")
    ] = ZERO_SHOT,
    errors_model: Annotated[
        str | None,
        typer.Option(help="error classifier (default: the champion when --model comes from the registry)"),
    ] = None,
    calltype_model: Annotated[
        str | None, typer.Option(help="call-type classifier (default: as --errors-model)")
    ] = None,
    questionnaire: QuestionnaireOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
    report_dir: Annotated[Path | None, typer.Option(help="write report.md and a PNG chart here")] = None,
    halves: Annotated[bool, typer.Option(help="also score the tuning and held-out halves")] = False,
) -> None:
    """Score models on labelled calls: answer F1 (per question), and error macro-F1 and call-type
    accuracy when classifiers run."""
    from evaluation.harness import evaluate_answers
    from evaluation.report import write_report

    q = load_questionnaire(questionnaire)
    paths = expand_paths(data)
    if not paths:
        raise BadInput(f"no labelled-call files match {', '.join(map(str, data))}")
    calls = read_labelled_many(paths, q)
    specs = model_specs(model, errors_model, calltype_model)
    extractor = load_answer_extractor(specs["answers"], q)
    classifiers = {
        task: (load_classifier(spec, task) if spec not in (None, "none") else None)
        for task, spec in specs.items()
        if task != "answers"
    }
    evaluation = evaluate_answers(
        calls,
        q,
        extractor,
        data=paths,
        halves=halves,
        show_progress=not as_json,
        errors=classifiers["errors"],
        call_type=classifiers["calltype"],
    )
    if report_dir is not None:
        report = write_report(evaluation, report_dir)
        err.print(f"report: {report}")
    if as_json:
        dump_json(evaluation.summary.model_dump(mode="json"))
        return
    _print_summary(evaluation.summary, Console())


def model_specs(model: str, errors_model: str | None, calltype_model: str | None) -> dict[str, str | None]:
    """Which model runs each task: ``--model`` names the answers model (or, as a ``models:/callqa-errors/…``
    URI, a classifier); from the registry, the other tasks default to their champions when they have one."""
    from callqa import registry
    from callqa.models import CHAMPION, is_registry_ref, task_of_ref

    specs: dict[str, str | None] = {"answers": model, "errors": errors_model, "calltype": calltype_model}
    routed = task_of_ref(model)
    if routed in ("errors", "calltype"):
        specs[routed] = model
        specs["answers"] = ZERO_SHOT if registry.champion("answers") is None else CHAMPION
    if is_registry_ref(model):
        for task in ("errors", "calltype"):
            if specs[task] is None and registry.champion(task) is not None:
                specs[task] = CHAMPION
    if model == CHAMPION and registry.champion("answers") is None:
        raise BadInput("no answers champion in the registry yet: train one (make train) or use --model zero-shot")
    return specs


def _print_summary(summary, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.model} on {summary.n_calls} calls", title_justify="left")
    for col in ("question", "gold", "pred", "match", "P", "R", "F1"):
        table.add_column(col, justify="left" if col == "question" else "right")
    for qid, m in summary.per_question.items():
        table.add_row(
            qid,
            str(m.n_gold),
            str(m.n_pred),
            str(m.n_match),
            *(f"{x:.2f}" for x in (m.precision, m.recall, m.f1)),
        )
    table.add_row(
        "[bold]overall[/]", "", "", "",
        f"{summary.answer_precision:.2f}", f"{summary.answer_recall:.2f}", f"[bold]{summary.answer_f1:.2f}[/]",
    )  # fmt: skip
    console.print(table)
    console.print(f"answer accuracy {summary.answer_accuracy:.3f} · {1000 * summary.seconds_per_call:.0f} ms per call")
    if summary.error_macro_f1 is not None:
        per = ", ".join(f"{e} {m.f1:.2f}" for e, m in (summary.per_error or {}).items())
        console.print(f"errors ({summary.error_model}): macro-F1 {summary.error_macro_f1:.3f} · {per}", highlight=False)
    if summary.call_type_accuracy is not None:
        console.print(
            f"call type ({summary.calltype_model}): accuracy {summary.call_type_accuracy:.3f}", highlight=False
        )
    if summary.halves:
        for name, m in summary.halves.items():
            console.print(
                f"{name:9s} half: {m.n_calls} calls, answer F1 {m.answer_f1:.3f} "
                f"(P {m.answer_precision:.3f}, R {m.answer_recall:.3f})"
            )


def demo_command(
    data: Annotated[
        list[Path] | None, typer.Option("--data", "-d", help="labelled calls (default: the dev calls)")
    ] = None,
    questionnaire: QuestionnaireOpt = None,
    audio: Annotated[bool, typer.Option(help="also speak one synthetic phone call and analyse the recording")] = True,
) -> None:
    """The main job on the embedded defaults: analyse labelled calls (answers, F1), then one call's audio."""
    from evaluation.demo import run_audio_demo, run_demo

    # piped or logged output gets a readable width instead of rich's 80-column default
    console = Console(width=None if sys.stdout.isatty() else 150)
    run_demo(data, questionnaire, console)
    if audio:
        run_audio_demo(questionnaire, console)


def bench_command(
    data: DataOpt = None,  # type: ignore[assignment]
    repeat: Annotated[int, typer.Option(min=1, help="passes over the data")] = 3,
    out: Annotated[Path | None, typer.Option(help="write the results as JSON here")] = None,
    model: Annotated[
        str, typer.Option("--model", help="answers: zero-shot, champion, a model dir or models:/…")
    ] = "zero-shot",
    errors_model: Annotated[str | None, typer.Option(help="also time this error classifier")] = None,
    calltype_model: Annotated[str | None, typer.Option(help="also time this call-type classifier")] = None,
) -> None:
    """Time text understanding per call and for a 5-minute transcript (p50/p95)."""
    from evaluation.bench import run_text_bench

    patterns = data or [Path(p) for p in get_settings().dev_data]
    models = {"answers": model, "errors": errors_model, "calltype": calltype_model}
    run_text_bench(patterns, repeat, out, Console(), models)


def evaluate_speech_command(
    data: Annotated[Path, typer.Option("--data", "-d", help="directory of recordings with .rttm (and .json) truth")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
    report_dir: Annotated[Path | None, typer.Option(help="write speech_report.md here")] = None,
    channel_map: Annotated[bool, typer.Option(help="use the stereo channel map from the .json truth")] = True,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N recordings")] = None,
    asr: AsrOpt = None,
    diarizer: DiarizerOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="answers model: champion (default when one exists), zero-shot, a dir, models:/…"),
    ] = None,
) -> None:
    """Score diarization (DER, JER), ASR (WER, CER), roles, answers from audio and speed on recordings with truth."""
    from callqa import registry
    from callqa.models import CHAMPION
    from callqa.pipeline import CallAnalyzer, build_text_pipeline
    from evaluation.speech import evaluate_speech, find_samples, write_speech_report

    samples = find_samples(data, use_channel_map=channel_map)[:limit]
    settings = settings_with_backends(asr, diarizer)
    questionnaire = load_questionnaire()
    spec = model or (CHAMPION if registry.champion("answers", settings) is not None else ZERO_SHOT)
    text = build_text_pipeline(questionnaire, load_answer_extractor(spec, questionnaire, settings), settings)
    analyzer = CallAnalyzer(questionnaire, settings, text=text)
    evaluation = evaluate_speech(samples, analyzer, progress=not as_json)
    if report_dir is not None:
        err.print(f"report: {write_speech_report(evaluation, data, report_dir)}")
    if as_json:
        dump_json(evaluation.model_dump(mode="json"))
        return
    e = evaluation
    Console().print(
        f"{e.n_calls} recordings, {e.audio_seconds:.0f} s: DER {e.der:.3f} (no collar {e.der_no_collar:.3f}), "
        f"JER {e.jer:.3f}, WER {e.wer if e.wer is None else round(e.wer, 3)}, "
        f"CER {e.cer if e.cer is None else round(e.cer, 3)}, roles {e.role_accuracy}, "
        f"answer F1 {e.answer_f1} (transcript {e.answer_f1_transcript}), "
        f"{1 / e.real_time_factor if e.real_time_factor else 0:.1f}× real time"
    )


def bench_speech_command(
    minutes: Annotated[list[float] | None, typer.Option("--minutes", help="call lengths (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the results as JSON here")] = None,
    asr: AsrOpt = None,
    diarizer: DiarizerOpt = None,
) -> None:
    """Real-time factor per speech stage and peak memory for 1-, 5- and 20-minute calls."""
    from evaluation.bench_speech import run_speech_bench

    backends = {"CALLQA_SPEECH__ASR": asr, "CALLQA_SPEECH__DIARIZER": diarizer}
    run_speech_bench(minutes or [1.0, 5.0, 20.0], out, Console(), {k: v.value for k, v in backends.items() if v})


def split_command(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for tune.jsonl and held_out.jsonl")],
    questionnaire: QuestionnaireOpt = None,
) -> None:
    """Split labelled calls into the tuning and held-out halves (stable by call id)."""
    from callqa.dataset import write_labelled_calls
    from evaluation.splits import split_halves

    q = load_questionnaire(questionnaire)
    paths = expand_paths(data)
    if not paths:
        raise BadInput(f"no labelled-call files match {', '.join(map(str, data))}")
    tune, held_out = split_halves(read_labelled_many(paths, q))
    for name, calls in (("tune", tune), ("held_out", held_out)):
        path = write_labelled_calls(out / f"{name}.jsonl", calls)
        err.print(f"{name:8s} {len(calls):3d} calls → {path}", highlight=False)


def gate_command(
    task: Annotated[str, typer.Argument(help="answers | errors | calltype")],
    data: DataOpt,
    version: Annotated[str, typer.Option(help="the candidate version (default: the latest registered)")] = "latest",
    max_drop: Annotated[
        float, typer.Option(help="a per-question (per-error) F1 drop that refuses when the gate is sure of it")
    ] = 0.02,
    questionnaire: QuestionnaireOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON on stdout")] = False,
) -> None:
    """Score a new version and the champion on held-out calls; promote it only if it is better."""
    from evaluation.gate import latest_version, run_gate

    q = load_questionnaire(questionnaire)
    paths = expand_paths(data)
    if not paths:
        raise BadInput(f"no labelled-call files match {', '.join(map(str, data))}")
    calls = read_labelled_many(paths, q)
    candidate = latest_version(task) if version == "latest" else version
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():  # JSON only on stdout
        decision = run_gate(task, candidate, calls, q, max_drop=max_drop)
    if as_json:
        dump_json(decision.model_dump(mode="json"))
        return
    _print_gate(decision, Console())


def _print_gate(d, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"{d.task}: {d.metric} on {d.held_out_calls} held-out calls", title_justify="left")
    table.add_column("model")
    table.add_column(d.metric, justify="right")
    if d.zero_shot_score is not None and d.champion != ZERO_SHOT:
        table.add_row(f"baseline: {ZERO_SHOT}", f"{d.zero_shot_score:.3f}")
    table.add_row(f"before: {d.champion}", f"{d.champion_score:.3f}")
    table.add_row(f"after:  {d.candidate}", f"[bold]{d.candidate_score:.3f}[/]")
    console.print(table)
    if (b := d.bootstrap) is not None:
        line = (
            f"paired bootstrap, {b.rule.resamples} resamples of {b.calls} calls: candidate − champion "
            f"{b.mean_diff:+.3f}, {100 * b.rule.confidence:g}% interval [{b.interval[0]:+.3f}, {b.interval[1]:+.3f}], "
            f"better in {100 * b.p_better:.1f}% (needs {100 * b.rule.confidence:g}%)"
        )
        if b.worst_item:
            drop, share = 100 * b.rule.max_drop, 100 * b.worst_item_p_worse
            line += f"; least safe: {b.worst_item}, more than {drop:g} points worse in {share:.1f}%"
        console.print(line, highlight=False)
    verdict = "[green]promoted to champion[/]" if d.promoted else "[yellow]refused; champion unchanged[/]"
    console.print(f"{verdict}: {d.reason}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to the core CLI (entry point ``callqa.commands``)."""
    app.command("evaluate")(exit_on_error(evaluate_command))
    app.command("gate")(exit_on_error(gate_command))
    app.command("split")(exit_on_error(split_command))
    app.command("demo")(exit_on_error(demo_command))
    app.command("bench")(exit_on_error(bench_command))
    app.command("evaluate-speech")(exit_on_error(evaluate_speech_command))
    app.command("bench-speech")(exit_on_error(bench_speech_command))
