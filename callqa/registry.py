"""MLflow tracking and model registry: one place that knows where runs and models live.

Embedded default: a SQLite backend and a local artifact directory under ``HOME/mlflow``, no
server. ``CALLQA_MLFLOW_URI`` points at an ``mlflow server`` instead (``make mlflow`` starts
one on 127.0.0.1 with the files in ``mlflow/``). Each task registers its versions under one
model name; the version that serves carries the alias ``champion``, which only the
evaluation gate moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callqa.errors import BadInput, ModelNotFound
from callqa.settings import Settings, get_settings

CHAMPION = "champion"
MODEL_NAMES = {
    "answers": "callqa-answers",
    "errors": "callqa-errors",
    "calltype": "callqa-calltype",
    "diarizer": "callqa-diarizer",
}
_MODEL_URI = re.compile(r"models:/(?P<name>[\w.-]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")


@dataclass(frozen=True)
class Registry:
    """Where MLflow keeps runs (tracking) and models (registry)."""

    tracking_uri: str
    artifact_root: Path | None  # only for the embedded store; a server has its own

    @property
    def embedded(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")


def registry(settings: Settings | None = None) -> Registry:
    """The configured store: ``CALLQA_MLFLOW_URI`` or SQLite + files under ``HOME/mlflow``."""
    settings = settings or get_settings()
    if settings.mlflow_uri:
        return Registry(settings.mlflow_uri, None)
    root = (settings.home / "mlflow").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return Registry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")


def use(settings: Settings | None = None) -> Registry:
    """Point this process's MLflow client at the configured store; returns it."""
    import mlflow

    store = registry(settings)
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.tracking_uri)
    return store


def experiment(name: str, settings: Settings | None = None) -> str:
    """The id of experiment ``name`` (created on first use, artifacts under the embedded root)."""
    import mlflow

    store = use(settings)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (store.artifact_root / name).as_uri() if store.artifact_root else None
    return mlflow.create_experiment(name, artifact_location=location)


def model_name(task: str) -> str:
    """The registered model name of a task (answers, errors, calltype, diarizer)."""
    if task not in MODEL_NAMES:
        raise BadInput(f"unknown task {task!r}; choose from {', '.join(MODEL_NAMES)}")
    return MODEL_NAMES[task]


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` → (name, version, alias)."""
    m = _MODEL_URI.fullmatch(uri.strip())
    if m is None:
        raise BadInput(
            f"{uri!r} is not a registry reference like models:/callqa-answers/3 or models:/callqa-answers@champion"
        )
    return m["name"], m["version"], m["alias"]


def resolve(uri: str, settings: Settings | None = None) -> Any:
    """The registered ``ModelVersion`` a reference names, or ``ModelNotFound`` saying what is missing."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    name, version, alias = parse_model_uri(uri)
    use(settings)
    client = MlflowClient()
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise ModelNotFound(f"{uri}: not in the registry at {registry(settings).tracking_uri} ({exc.message})") from exc


def champion(task: str, settings: Settings | None = None) -> Any | None:
    """The champion ``ModelVersion`` of a task, or None before the first promotion."""
    try:
        return resolve(f"models:/{model_name(task)}@{CHAMPION}", settings)
    except ModelNotFound:
        return None


def promote(task: str, version: str | int, settings: Settings | None = None) -> None:
    """Move the ``champion`` alias of a task to ``version`` (the evaluation gate's decision)."""
    from mlflow import MlflowClient

    resolve(f"models:/{model_name(task)}/{version}", settings)  # a clear error for a missing version
    MlflowClient().set_registered_model_alias(model_name(task), CHAMPION, str(version))


def register_artifacts(task: str, source: str, run_id: str, settings: Settings | None = None) -> str:
    """Register a run's artifact directory that is not an MLflow Model (the diarizer's ``.nemo``)."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    use(settings)
    client = MlflowClient()
    name = model_name(task)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    return str(client.create_model_version(name, source=source, run_id=run_id).version)


def log_calls_dataset(calls, *, source: str, name: str, context: str) -> None:
    """Log labelled calls as an MLflow dataset input of the active run (id, origin, content digest per call)."""
    import hashlib

    import pandas as pd

    import mlflow
    from callqa.synthetic import is_synthetic

    df = pd.DataFrame(
        {
            "call_id": [c.call_id for c in calls],
            "source": ["synthetic" if is_synthetic(c.call_id) else "labelled" for c in calls],
            "digest": [hashlib.sha256(c.json_line().encode()).hexdigest()[:16] for c in calls],
        }
    )
    mlflow.log_input(mlflow.data.from_pandas(df, source=source, name=name), context=context)
