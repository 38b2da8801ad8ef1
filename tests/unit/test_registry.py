from __future__ import annotations

from pathlib import Path

import pytest

from callqa import registry
from callqa.errors import BadInput, ModelNotFound
from callqa.settings import Settings


def exercise_registry(settings: Settings) -> None:
    """Register two versions of the answers model, promote, resolve; the shared check of both stores."""
    import mlflow
    from mlflow import MlflowClient

    exp = registry.experiment("callqa-test", settings)
    name = registry.model_name("answers")
    assert registry.champion("answers", settings) is None
    client = MlflowClient()
    client.create_registered_model(name)
    versions = []
    for k in range(2):
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_param("k", k)
            mlflow.log_text(f"weights {k}", "model/weights.txt")
            versions.append(client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id))
    assert [str(v.version) for v in versions] == ["1", "2"]
    registry.promote("answers", 1, settings)
    assert str(registry.champion("answers", settings).version) == "1"
    registry.promote("answers", "2", settings)
    assert str(registry.resolve(f"models:/{name}@champion", settings).version) == "2"
    assert registry.resolve(f"models:/{name}/1", settings).run_id == versions[0].run_id
    with pytest.raises(ModelNotFound, match="not in the registry"):
        registry.promote("answers", 9, settings)
    assert str(registry.champion("answers", settings).version) == "2"  # a failed promotion moves nothing
    with pytest.raises(ModelNotFound):
        registry.resolve("models:/callqa-nothing@champion", settings)


def test_embedded_store_lives_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    store = registry.registry(settings)
    assert store.embedded and store.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    server = registry.registry(Settings(home=tmp_path, mlflow_uri="http://127.0.0.1:5000"))
    assert not server.embedded and server.artifact_root is None


def test_references_are_parsed_or_refused() -> None:
    assert registry.parse_model_uri("models:/callqa-answers/3") == ("callqa-answers", "3", None)
    assert registry.parse_model_uri("models:/callqa-answers@champion") == ("callqa-answers", None, "champion")
    for bad in ("champion", "models:/callqa-answers", "runs:/abc/model", "models:/a/b/c"):
        with pytest.raises(BadInput, match="not a registry reference"):
            registry.parse_model_uri(bad)
    with pytest.raises(BadInput, match="unknown task"):
        registry.model_name("sentiment")


def test_register_promote_resolve_embedded(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    exercise_registry(settings)
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    assert any((tmp_path / "mlflow" / "artifacts" / "callqa-test").rglob("weights.txt"))


def test_the_server_config_folder_never_shadows_mlflow() -> None:
    import mlflow

    root = Path(__file__).resolve().parents[2]
    assert (root / "mlflow" / "server.sh").is_file() and not (root / "mlflow" / "__init__.py").exists()
    assert "site-packages" in Path(mlflow.__file__).parts
