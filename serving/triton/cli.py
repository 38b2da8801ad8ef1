"""``callqa serve triton ...``: export models into a Triton repository, run a local Triton on it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from callqa.cli import err, exit_on_error

triton_app = typer.Typer(help="Triton: export the answer/error models (ONNX) and run a local tritonserver.")

RefOpt = Annotated[str | None, typer.Option(help="model: a model directory, `champion` or models:/NAME/VERSION")]


@triton_app.command("export")
@exit_on_error
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="model repository directory to write")],
    answers: RefOpt = None,
    errors: RefOpt = None,
    calltype: RefOpt = None,
    gpu: Annotated[bool, typer.Option("--gpu/--cpu", help="instance group KIND_GPU (deployment) or KIND_CPU")] = False,
    instances: Annotated[int, typer.Option(min=1, help="model instances (per GPU with --gpu)")] = 1,
    backend: Annotated[
        str, typer.Option(help="python (runs here: the pytriton bundle) or onnxruntime (a full Triton image)")
    ] = "python",
    max_batch_size: Annotated[int, typer.Option(min=1, help="largest batch (answers: windows) per request")] = 64,
    queue_delay_us: Annotated[int, typer.Option(min=0, help="dynamic batching: longest wait for a batch")] = 2000,
) -> None:
    """Export models to ONNX and write a Triton model repository (config.pbtxt, 1/model.onnx)."""
    from callqa.errors import BadInput
    from serving.triton.repository import RepositoryOptions, build_repository

    if backend not in ("python", "onnxruntime"):
        raise BadInput(f"--backend is python or onnxruntime, not {backend!r}")
    refs = {k: v for k, v in {"answers": answers, "errors": errors, "calltype": calltype}.items() if v}
    options = RepositoryOptions(
        max_batch_size=max_batch_size,
        max_queue_delay_us=queue_delay_us,
        gpu=gpu,
        instances=instances,
        backend=backend,  # type: ignore[arg-type]
    )
    for path in build_repository(out, refs, options):
        typer.echo(f"{path.name}: {path}")


@triton_app.command("server")
@exit_on_error
def server(
    repository: Annotated[Path, typer.Argument(help="model repository (from `callqa serve triton export`)")],
    http_port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port on 127.0.0.1")] = 8001,
) -> None:
    """Run the tritonserver bundled with nvidia-pytriton (its own venv) on a repository until Ctrl-C."""
    from callqa.errors import ServiceUnavailable
    from serving.triton.server import TritonServer

    with TritonServer(repository, http_port=http_port, grpc_port=grpc_port) as srv:
        err.print(f"tritonserver ready: {srv.http_url} {srv.grpc_url} (log: {srv.log_path}); Ctrl-C stops it")
        try:
            while srv.proc is not None and srv.proc.poll() is None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            return
        raise ServiceUnavailable(f"tritonserver stopped on its own; see {srv.log_path}:\n{srv.tail()}")
