"""Resolve a model reference (``--model``) to a loaded model.

A reference is ``zero-shot`` (answers only, no training: rules, navec and the pretrained encoder's
similarities; ``zero-shot-rules`` without the encoder), a local model
directory (``model.json`` + ``weights.pt``), ``champion`` (the task's version that carries the
alias), or a registry URI ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS``. Registry versions
are downloaded once into ``HOME/cache/models/NAME/VERSION`` and loaded from there.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from callqa import registry
from callqa.errors import BadInput, ModelNotFound
from callqa.modelfiles import CONFIG_FILE, model_type
from callqa.schemas import Questionnaire
from callqa.settings import Settings, get_settings
from callqa.understanding.answers import AnswerExtractor, ZeroShotAnswerExtractor

ZERO_SHOT = "zero-shot"
ZERO_SHOT_RULES = "zero-shot-rules"  # the rules and navec alone, without the pretrained encoder
CHAMPION = registry.CHAMPION
TASK_OF_TYPE = {
    "span": "answers",
    "hf_span": "answers",
    "errors": "errors",
    "calltype": "calltype",
    "diarizer": "diarizer",
}


def is_registry_ref(spec: str) -> bool:
    return spec == CHAMPION or spec.startswith("models:/")


def task_of_ref(spec: str) -> str | None:
    """The task a ``models:/callqa-TASK/...`` reference belongs to (None for other names)."""
    if not spec.startswith("models:/"):
        return None
    name = registry.parse_model_uri(spec)[0]
    return next((task for task, n in registry.MODEL_NAMES.items() if n == name), None)


def fetch(spec: str, task: str, settings: Settings | None = None) -> tuple[Path, str]:
    """A local model directory for ``spec`` and a display name (``callqa-answers/3`` for versions)."""
    settings = settings or get_settings()
    if not is_registry_ref(spec):
        path = Path(spec)
        if not (path / CONFIG_FILE).is_file():
            raise ModelNotFound(
                f"{spec!r} is neither {ZERO_SHOT}, {CHAMPION}, a models:/ URI nor a model directory with {CONFIG_FILE}"
            )
        return path, path.name
    uri = f"models:/{registry.model_name(task)}@{CHAMPION}" if spec == CHAMPION else spec
    version = registry.resolve(uri, settings)
    target = settings.home / "cache" / "models" / version.name / str(version.version)
    if not target.is_dir():
        registry.use(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
        try:
            _download(f"models:/{version.name}/{version.version}", staging)
            found = next((p.parent for p in staging.rglob(CONFIG_FILE)), None)
            if found is None:
                raise ModelNotFound(f"{uri}: version {version.version} has no {CONFIG_FILE} among its artifacts")
            shutil.move(str(found), str(target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target, f"{version.name}/{version.version}"


def _download(uri: str, dst: Path) -> None:
    """The model directory of a version: only the pyfunc's ``model_dir`` artifact when there is one
    (not the packaged code beside it), else everything the version holds."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    from callqa.mlflow_model import ARTIFACT

    repo = ModelsArtifactRepository(uri)
    try:
        repo.download_artifacts(f"artifacts/{ARTIFACT}", dst_path=str(dst))
        if any(dst.rglob(CONFIG_FILE)):
            return
    except (MlflowException, OSError):
        pass
    repo.download_artifacts("", dst_path=str(dst))


def load_answer_extractor(spec: str, questionnaire: Questionnaire, settings: Settings | None = None) -> AnswerExtractor:
    """An extractor for ``spec`` (see the module docstring)."""
    if spec == ZERO_SHOT:
        from callqa.encoder.store import text_encoder

        return ZeroShotAnswerExtractor(questionnaire, encoder=text_encoder(settings or get_settings()))
    if spec == ZERO_SHOT_RULES:
        return ZeroShotAnswerExtractor(questionnaire)
    path, name = fetch(spec, "answers", settings)
    kind = model_type(path)
    if kind == "span":
        from callqa.understanding.span_model import SpanAnswerExtractor

        return SpanAnswerExtractor.load(path, questionnaire, name=name)
    if kind == "hf_span":
        from callqa.understanding.hf_span import HFSpanAnswerExtractor

        return HFSpanAnswerExtractor.load(path, questionnaire, name=name)
    raise ModelNotFound(f"{spec}: a {kind!r} model, not an answer model")


def load_classifier(spec: str, task: str, settings: Settings | None = None):
    """An error or call-type classifier (``TurnClassifier``) for ``spec``."""
    from callqa.text.lexicon import load_lexicon
    from callqa.understanding.classifiers import TurnClassifier

    if task not in ("errors", "calltype"):
        raise BadInput(f"no classifier for task {task!r}")
    settings = settings or get_settings()
    path, name = fetch(spec, task, settings)
    kind = model_type(path)
    if kind != task:
        raise ModelNotFound(f"{spec}: a {kind!r} model, not a {task} model")
    return TurnClassifier.load(path, load_lexicon(settings.lexicon), name=name)


def champion_or_none(task: str, settings: Settings | None = None):
    """The task's champion classifier, or None before the first promotion."""
    if registry.champion(task, settings) is None:
        return None
    return load_classifier(CHAMPION, task, settings)


def pipeline_for_model_dir(path: str | Path, questionnaire: Questionnaire | None = None):
    """A text pipeline that runs the model in ``path`` (the answers model, or zero-shot + a classifier)."""
    from callqa.pipeline import build_text_pipeline
    from callqa.questionnaire import load_questionnaire

    questionnaire = questionnaire or load_questionnaire()
    kind = model_type(path)
    task = TASK_OF_TYPE.get(kind or "")
    if task not in ("answers", "errors", "calltype"):
        raise ModelNotFound(f"{path}: not a callqa text model directory")
    if task == "answers":
        return build_text_pipeline(questionnaire, load_answer_extractor(str(path), questionnaire))
    clf = load_classifier(str(path), task)
    return build_text_pipeline(
        questionnaire, errors=clf if task == "errors" else None, call_type=clf if task == "calltype" else None
    )
