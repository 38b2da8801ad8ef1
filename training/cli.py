"""``callqa train TASK`` and ``callqa speech build-models``: the training app's commands, plugged into the core CLI."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from callqa.cli import QuestionnaireOpt, dump_json, err, exit_on_error, speech_app
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


class Task(StrEnum):
    answers = "answers"
    errors = "errors"
    calltype = "calltype"
    diarizer = "diarizer"


@exit_on_error
def train_command(
    task: Annotated[Task, typer.Argument(help="answers | errors | calltype | diarizer")],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", "-d", help="labelled calls (JSONL; diarizer: a directory of WAV+RTTM); repeatable, globs"
        ),
    ] = None,
    synthetic: Annotated[int, typer.Option(help="synthetic calls generated for training (text tasks)")] = 600,
    epochs: Annotated[int, typer.Option(help="maximum epochs")] = 10,
    max_minutes: Annotated[float, typer.Option(help="wall-clock budget of the fit")] = 8.0,
    batch_size: Annotated[int, typer.Option(help="batch size")] = 16,
    lr: Annotated[float | None, typer.Option(help="learning rate (default per task)")] = None,
    labelled_weight: Annotated[int, typer.Option(help="how many times each labelled call counts per epoch")] = 4,
    seed: Annotated[int, typer.Option(help="seed of the synthetic data, split and training")] = 0,
    backbone: Annotated[
        Path | None, typer.Option(help="answers: a HuggingFace QA checkpoint directory instead of the navec BiLSTM")
    ] = None,
    encoder: Annotated[
        bool,
        typer.Option("--encoder/--no-encoder", help="text tasks: on the pretrained encoder (default) or navec only"),
    ] = True,
    finetune_encoder: Annotated[
        bool,
        typer.Option("--finetune-encoder", help="answers: train the encoder with the head, end to end (GPU recipe)"),
    ] = False,
    vary_questions: Annotated[
        bool,
        typer.Option(
            "--vary-questions/--fixed-questions",
            help="answers on the encoder: train on each question's texts drawn at random (default) or as served",
        ),
    ] = True,
    accelerator: Annotated[str, typer.Option(help="cpu | gpu (Lightning accelerator)")] = "cpu",
    ray: Annotated[bool, typer.Option("--ray", help="train with Ray Train (TorchTrainer, DDP on CPU workers)")] = False,
    workers: Annotated[int, typer.Option(help="Ray workers (with --ray)")] = 2,
    max_steps: Annotated[int, typer.Option(help="stop after this many optimisation steps (-1: no limit)")] = -1,
    register_model: Annotated[bool, typer.Option("--register/--no-register", help="register a version")] = True,
    shuffle_labels: Annotated[
        bool, typer.Option("--shuffle-labels", help="train on shuffled labels (a deliberately bad model)", hidden=True)
    ] = False,
    questionnaire: QuestionnaireOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON on stdout")] = False,
) -> None:
    """Fine-tune a model, log the run to MLflow and register a version (the gate decides promotion)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from callqa.dataset import expand_paths
    from callqa.errors import BadInput
    from training.fit import FitOptions

    paths = expand_paths(data or [])
    if data and not paths:
        raise BadInput(f"no files match {', '.join(map(str, data))}")
    default_lr = {"answers": 2e-3, "errors": 3e-3, "calltype": 3e-3, "diarizer": 1e-4}[task.value]
    fit = FitOptions(
        max_epochs=epochs,
        max_minutes=max_minutes,
        batch_size=batch_size,
        lr=lr or default_lr,
        seed=seed,
        progress=not as_json,
        max_steps=max_steps,
        ray_workers=workers if ray else 0,
        accelerator=accelerator,
    )
    if accelerator not in ("cpu", "gpu"):
        raise BadInput(f"--accelerator {accelerator!r}: choose cpu or gpu")
    # libraries print to stdout (MLflow's "View run … at: URL" for a server): with --json it must
    # carry one JSON object only, so their chatter goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        outcome = _train(task, paths, fit, register_model, synthetic, labelled_weight, backbone, questionnaire,
                         shuffle_labels, encoder, finetune_encoder, vary_questions)  # fmt: skip
    summary = {
        "task": outcome.task,
        "run_id": outcome.run_id,
        "version": outcome.version,
        "model_dir": str(outcome.model_dir),
        "dataset_hash": outcome.dataset_hash,
        "seconds": round(outcome.seconds, 1),
        "metrics": {k: round(v, 4) for k, v in outcome.metrics.items()},
    }
    if as_json:
        dump_json(summary)
        return
    shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(outcome.metrics.items()) if "calibration_f1_" not in k)
    err.print(
        f"{outcome.task}: version {outcome.version or '(not registered)'} · run {outcome.run_id} · "
        f"{outcome.seconds:.0f} s · {shown}",
        highlight=False,
    )


def _train(
    task: Task,
    paths,
    fit,
    register_model,
    synthetic,
    labelled_weight,
    backbone,
    questionnaire,
    shuffle_labels,
    encoder,
    finetune_encoder=False,
    vary_questions=True,
):
    if task == Task.diarizer:
        from training.diarizer import DiarizerSpec, train_diarizer

        return train_diarizer(DiarizerSpec(data=paths, fit=fit, register=register_model))
    from training.jobs import TrainSpec, train

    spec = TrainSpec(
        task=task.value,
        data=paths,
        synthetic=synthetic,
        labelled_weight=labelled_weight,
        backbone=str(backbone) if backbone else None,
        fit=fit,
        register=register_model,
        questionnaire=questionnaire,
        shuffle_labels=shuffle_labels,
        encoder=encoder,
        finetune_encoder=finetune_encoder,
        vary_questions=vary_questions,
    )
    return train(spec)


def register(app: typer.Typer) -> None:
    """Add ``train`` and the ``speech build-models`` command."""
    app.command("train")(train_command)
    speech_app.command("build-models")(build_models_command)
