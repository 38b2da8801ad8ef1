"""``callqa label ...``: the labelling loop's commands, plugged into the core CLI."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from callqa.cli import QuestionnaireOpt, dump_json, err, exit_on_error
from callqa.settings import get_settings

label_app = typer.Typer(
    help="Label Studio: projects, pre-annotated pushes, pulls into training data.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="print the outcome as JSON on stdout")]


@label_app.command("server")
@exit_on_error
def server_command(
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: from CALLQA_LABELSTUDIO__URL)")] = None,
) -> None:
    """Run a local Label Studio (own venv, SQLite under HOME/labelstudio) until Ctrl-C or SIGTERM."""
    import signal

    from labeling.server import LabelStudioServer

    def _terminate(_signum, _frame):  # SIGTERM stops Label Studio too (it runs in its own process group)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)

    settings = get_settings()
    srv = LabelStudioServer(settings, port=port)
    err.print(f"starting Label Studio {settings.labelstudio.version} on {srv.url} (data: {srv.data_dir}) ...")
    with srv:
        cfg = settings.labelstudio
        err.print(f"[green]ready[/] {srv.url}  login {cfg.username} / {cfg.password}  API key {cfg.api_key}")
        try:
            while srv.proc is not None and srv.proc.poll() is None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            err.print("stopping")
    if srv.proc is not None and srv.proc.returncode not in (0, -15, None):
        err.print(f"[red]Label Studio exited with {srv.proc.returncode}[/]; see {srv.log_path}")
        raise typer.Exit(1)


@label_app.command("push")
@exit_on_error
def push_command(
    calls: Annotated[
        list[Path],
        typer.Option("--calls", "-c", help="transcripts (JSON/JSONL), recordings or directories; repeatable"),
    ],
    limit: Annotated[int | None, typer.Option(help="push only the N calls the models are least sure of")] = None,
    model: Annotated[str, typer.Option(help="answers model: champion | zero-shot | models:/... | DIR")] = "champion",
    questionnaire: QuestionnaireOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or refresh) Label Studio tasks with the models' predictions, least sure first."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from callqa.questionnaire import load_questionnaire
    from labeling.push import push

    q = load_questionnaire(questionnaire)
    report = push(calls, q, limit=limit, answers_model=model, show_progress=sys.stderr.isatty())
    if as_json:
        dump_json(report.as_dict())
        return
    err.print(
        f"project {report.project_title!r} (id {report.project_id}, config {report.config}); "
        f"model {report.model_version}: {len(report.created)} new tasks, "
        f"{len(report.repredicted)} new predictions, {len(report.unchanged)} unchanged",
        highlight=False,
    )
    for item in report.order[:10]:
        err.print(f"  {item['score']:.3f}  {item['call_id']}  ({item['disagreements']} disagreements)", highlight=False)


@label_app.command("pull")
@exit_on_error
def pull_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="directory of snapshots (OUT/<hash>/calls.jsonl ...)")],
    project: Annotated[str | None, typer.Option(help="project title (default: the questionnaire's)")] = None,
    questionnaire: QuestionnaireOpt = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log the snapshot to MLflow")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export finished annotations as a versioned labelled-call snapshot (+ RTTM), logged to MLflow."""
    from callqa.questionnaire import load_questionnaire
    from labeling.pull import pull

    report = pull(out, load_questionnaire(questionnaire), project=project, log_to_mlflow=not no_mlflow)
    if as_json:
        dump_json(report.as_dict())
        return
    err.print(
        f"snapshot {report.snapshot}: {report.labelled} labelled calls of {report.tasks} tasks, "
        f"{report.with_audio} with speaker regions",
        highlight=False,
    )
    if report.agreement:
        err.print(f"  agreement ({report.agreement_tasks} tasks): {report.agreement['overall']:.3f}", highlight=False)
    for key, rate in report.changed.items():
        err.print(f"  changed by annotators {key:<32} {rate:.0%}", highlight=False)


@label_app.command("annotate")
@exit_on_error
def annotate_command(
    gold: Annotated[
        list[Path], typer.Option("--gold", "-g", help="gold labels: labelled JSONL or synthetic reference dirs")
    ],
    noise: Annotated[float, typer.Option(help="chance that each field is spoiled (0..1)")] = 0.0,
    per_task: Annotated[int, typer.Option(help="annotations per task (agreement needs 2+)")] = 1,
    limit: Annotated[int | None, typer.Option(help="annotate at most N tasks")] = None,
    seed: Annotated[int, typer.Option(help="seed of the noise")] = 0,
    questionnaire: QuestionnaireOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulated annotator: fill the project's open tasks from gold labels through the API."""
    from callqa.questionnaire import load_questionnaire
    from labeling.annotator import annotate, read_gold

    q = load_questionnaire(questionnaire)
    report = annotate(read_gold(gold, q), q, noise=noise, per_task=per_task, limit=limit, seed=seed)
    if as_json:
        dump_json(report.as_dict())
        return
    err.print(f"annotated {len(report.annotated)} tasks; skipped {len(report.skipped)}", highlight=False)


@label_app.command("webhook")
@exit_on_error
def webhook_command(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8086,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="point the questionnaire's project at this receiver")
    ] = True,
    questionnaire: QuestionnaireOpt = None,
) -> None:
    """Receive Label Studio annotation events; after N new annotations train and gate the models."""
    import uvicorn

    from callqa.questionnaire import load_questionnaire
    from labeling.webhook import create_app, register_webhook

    url = f"http://127.0.0.1:{port}/labelstudio/webhook"
    if register:
        hook = register_webhook(url, load_questionnaire(questionnaire).name)
        err.print(f"webhook {hook['url']} for project {hook['project']} ({'created' if hook['created'] else 'kept'})")
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add ``label``."""
    app.add_typer(label_app, name="label")
