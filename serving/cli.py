"""``callqa serve ...``: the API server (local or on Ray Serve), Triton, load test and benchmark."""

from __future__ import annotations

import typer

serve_app = typer.Typer(help="Serving: the REST API, Ray Serve, Triton, load test, benchmark.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Plug ``callqa serve ...`` into the core CLI."""
    app.add_typer(serve_app, name="serve")
