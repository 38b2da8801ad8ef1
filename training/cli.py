"""``callqa speech build-models``: the training app's commands, plugged into the core CLI."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from callqa.cli import err, exit_on_error, speech_app
from callqa.settings import get_settings


class ModelKind(StrEnum):
    speaker = "speaker"
    sortformer = "sortformer"
    asr = "asr"


@exit_on_error
def build_models_command(
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="where the .nemo files go (default: settings' models dir)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="tiny models, one or two optimisation steps (tests)")] = False,
    seed: Annotated[int, typer.Option("--seed", help="seed of the synthetic data and training")] = 0,
    only: Annotated[
        list[ModelKind] | None, typer.Option("--only", help="build just these (repeatable): speaker|sortformer|asr")
    ] = None,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="skip the models whose .nemo file already exists")
    ] = False,
) -> None:
    """Build and briefly train the NeMo speech models on synthetic calls (no downloads, CPU)."""
    # Before torch loads OpenMP: spinning worker threads collapse throughput 3-8x when another
    # process holds a core (measured on the 2-core box); passive waiting costs nothing when idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from training.speech_models import MODEL_KINDS, SPECS, build_all, build_report

    target = models_dir or get_settings().models_dir
    kinds = {k.value for k in only} if only else set(MODEL_KINDS)
    if if_missing:
        present = {k for k in kinds if (target / SPECS[k].file).is_file()}
        for kind in sorted(present):
            err.print(f"{kind:<10} {target / SPECS[kind].file} exists; kept", highlight=False)
        kinds -= present
        if not kinds:
            return
    built = build_all(target, quick=quick, seed=seed, only=kinds)
    for kind, path in built.items():
        report = build_report(path)
        quality = ", ".join(f"{k} {v:.3f}" for k, v in report["quality"].items())
        err.print(f"{kind:<10} {path}  ({report['size_mb']} MB, {report['seconds']:.0f} s; {quality})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``build-models`` to the ``callqa speech`` group."""
    speech_app.command("build-models")(build_models_command)
