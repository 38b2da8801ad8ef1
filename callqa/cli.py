"""The ``callqa`` command line: thin wrappers over typed functions of the library."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from callqa.errors import CallQAError
from callqa.settings import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="callqa",
    help="Sales-call QA: answers to the key questions and manager coaching from calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


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


@app.command()
@exit_on_error
def analyze(
    path: Annotated[Path, typer.Argument(help="transcript: JSON call, JSON list, or JSONL of calls")],
    questionnaire: QuestionnaireOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON (one object per call)")] = False,
) -> None:
    """Find the answers to the questionnaire and the call metrics in transcripts."""
    from callqa.pipeline import analyze_file
    from callqa.questionnaire import load_questionnaire
    from callqa.render import print_result

    q = load_questionnaire(questionnaire)
    results = analyze_file(path, q)
    if as_json:
        for result in results:
            sys.stdout.write(result.model_dump_json() + "\n")
        return
    console = Console()
    for result in results:
        print_result(result, q, console)


@app.command()
@exit_on_error
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write")],
    n: Annotated[int, typer.Option("--n", min=1, help="number of calls")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same calls)")] = 0,
    asr_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="share rendered as raw ASR text")] = 1 / 3,
) -> None:
    """Generate labelled synthetic sales calls (bootstrapping data for training and tests)."""
    from callqa.dataset import write_labelled_calls
    from callqa.synthetic import generate_calls

    calls = generate_calls(n, seed, asr_share=asr_share)
    write_labelled_calls(out, calls)
    err.print(f"wrote {len(calls)} calls to {out}")


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
