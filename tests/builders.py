"""Data builders for tests: small calls written inline rather than large fixture files."""

from __future__ import annotations

from pathlib import Path

from callqa.schemas import Call, LabelledCall, Turn

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_call(*turns: tuple[str, str], call_id: str = "t-1", **kwargs: object) -> Call:
    """A call from (speaker, text) pairs: ``make_call(("AGENT", "..."), ("CLIENT", "..."))``."""
    return Call(call_id=call_id, turns=[Turn(speaker=s, text=t) for s, t in turns], **kwargs)


def make_labelled(
    *turns: tuple[str, str], answers: dict[str, tuple[int, str, object] | None] | None = None, **kwargs: object
) -> LabelledCall:
    """A labelled call; answers map question id → (turn, exact text, value) or None."""
    return LabelledCall(
        call_id=str(kwargs.pop("call_id", "l-1")),
        turns=[Turn(speaker=s, text=t) for s, t in turns],
        answers={
            q: (None if a is None else {"turn": a[0], "text": a[1], "value": a[2]}) for q, a in (answers or {}).items()
        },
        **kwargs,
    )


def register_calltype_model(settings, workdir) -> str:
    """An untrained call-type classifier registered as a new ``callqa-calltype`` version; its number."""
    import mlflow
    from callqa import registry
    from callqa.text.lexicon import load_lexicon
    from callqa.understanding.classifiers import ClassifierConfig, TurnAttentionNet, TurnClassifier
    from mlflow import MlflowClient
    from training.classifiers import LABELS

    cfg = ClassifierConfig(type="calltype", labels=LABELS["calltype"], hidden=4)
    TurnClassifier(TurnAttentionNet(cfg), cfg, load_lexicon(settings.lexicon)).save(workdir / "ct")
    exp = registry.experiment("callqa-test", settings)
    client = MlflowClient()
    name = registry.model_name("calltype")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(workdir / "ct"), "model")
    return str(client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id).version)
