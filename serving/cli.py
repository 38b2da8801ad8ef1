"""``callqa serve ...``: the API server (local or on Ray Serve), Triton, load test and benchmark."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from callqa.cli import err, exit_on_error
from callqa.settings import Settings, get_settings

SERVE_YAML = Path(__file__).with_name("serve.yaml")
serve_app = typer.Typer(
    help="Serving: `callqa serve --local` (in-process) or `callqa serve` (Ray Serve); Triton, load test, benchmark.",
)


def _stop_on_sigterm() -> None:
    def _terminate(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def run_local(settings: Settings, host: str, port: int) -> None:
    """The API and every stage in this process (uvicorn)."""
    import uvicorn

    from serving.local import local_app

    uvicorn.run(local_app(settings), host=host, port=port, log_level="info", timeout_graceful_shutdown=10)


def run_ray(settings: Settings, host: str, port: int, config: Path, num_cpus: int | None) -> None:
    """The Ray Serve application on a local Ray (or the cluster in RAY_ADDRESS) until Ctrl-C."""
    import os

    import ray
    import yaml
    from ray import serve

    from callqa import registry
    from serving.deployments import APP_NAME, build, deployment_options, settings_payload

    options = deployment_options(yaml.safe_load(config.read_text()))
    registry.champion("answers", settings)  # creates the embedded registry here, before the replicas race to
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    _stop_on_sigterm()  # after ray.init, which installs its own SIGTERM handler (it aborts the process)
    try:
        serve.start(http_options={"host": host, "port": port})
        err.print(f"deploying {APP_NAME} on Ray Serve (http://{host}:{port}) ...")
        serve.run(build({"settings": settings_payload(settings)}, options), name=APP_NAME, route_prefix="/")
        err.print(f"[green]serving[/] http://{host}:{port}  (docs: /docs, readiness: /readyz)")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        err.print("stopping")
    finally:
        serve.shutdown()
        ray.shutdown()


@serve_app.callback(invoke_without_command=True)
@exit_on_error
def serve_command(
    ctx: typer.Context,
    local: Annotated[bool, typer.Option("--local", help="everything in this process, no Ray cluster")] = False,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    config: Annotated[Path, typer.Option(help="Ray Serve config (deployment options)")] = SERVE_YAML,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of the local Ray (default: all)")] = None,
) -> None:
    """Run the API: POST /v1/calls, /v1/transcripts, GET /v1/calls/{id}, questionnaires, /metrics."""
    if ctx.invoked_subcommand is not None:
        return
    _stop_on_sigterm()
    settings = get_settings()
    if local:
        run_local(settings, host, port)
    else:
        if not config.is_file():
            from callqa.errors import BadInput

            raise BadInput(f"--config {config}: no such file")
        run_ray(settings, host, port, config, num_cpus)


@serve_app.command("loadtest")
@exit_on_error
def loadtest_command(
    url: Annotated[str, typer.Option(help="the running API")] = "http://127.0.0.1:8000",
    transcripts: Annotated[Path | None, typer.Option(help="JSON/JSONL transcripts to send to /v1/transcripts")] = None,
    recordings: Annotated[
        list[Path] | None, typer.Option("--recording", "-r", help="recordings to send to /v1/calls; repeatable")
    ] = None,
    rate: Annotated[float, typer.Option(help="requests started per second (open loop)")] = 5.0,
    seconds: Annotated[float, typer.Option(help="how long to send transcripts")] = 30.0,
    count: Annotated[int, typer.Option(help="how many recordings to send")] = 20,
    cut: Annotated[float | None, typer.Option(help="cut each recording to this many seconds")] = None,
    out: Annotated[Path | None, typer.Option(help="write the report JSON here")] = None,
) -> None:
    """A bounded load test: sustained rate, p50/p99, statuses; recordings followed until done (none lost)."""
    import json
    import uuid

    from callqa.cli import dump_json
    from callqa.errors import BadInput
    from serving.loadtest import load_recordings, load_transcripts, recordings_load, run, transcripts_load

    if (transcripts is None) == (not recordings):
        raise BadInput("give --transcripts FILE or --recording WAV (one kind per run)")
    if rate <= 0:
        raise BadInput("--rate must be positive")
    key = (get_settings().api_keys or [None])[0]
    if transcripts is not None:
        bodies = load_transcripts(transcripts)
        report = run(url, key, lambda c: transcripts_load(c, bodies, rate, seconds))
    else:
        data = load_recordings(list(recordings or []), cut)
        run_id = uuid.uuid4().hex[:8]
        report = run(url, key, lambda c: recordings_load(c, data, rate, count, run_id))
    if out is not None:
        out.write_text(json.dumps(report.as_dict(), indent=1))
    dump_json(report.as_dict())
    if report.server_errors or report.transport_errors or report.lost:
        err.print(f"[red]{report.server_errors} 5xx, {report.transport_errors} transport errors, {report.lost} lost[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Plug ``callqa serve ...`` into the core CLI."""
    from serving.benchmark import register_bench
    from serving.triton.cli import triton_app

    serve_app.add_typer(triton_app, name="triton")
    register_bench(serve_app)
    app.add_typer(serve_app, name="serve")
