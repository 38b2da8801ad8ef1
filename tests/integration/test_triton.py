"""Triton end to end: the bundled tritonserver on 127.0.0.1 gives the in-process answers and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from callqa.errors import ModelNotFound, ServiceUnavailable
from callqa.settings import get_settings
from callqa.synthetic import generate_calls
from callqa.text.lexicon import load_lexicon
from callqa.understanding.classifiers import ClassifierConfig, TurnAttentionNet, TurnClassifier
from callqa.understanding.document import CallDocument
from callqa.understanding.metrics import text_metrics
from callqa.understanding.span_model import SpanAnswerExtractor, SpanConfig, SpanNet
from serving.triton.client import TritonClassifierRunner, TritonRunner, triton_answer_extractor
from serving.triton.repository import build_repository
from serving.triton.server import TritonServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def models(tmp_path_factory, questionnaire):
    """A tiny answer model (answers every question) and error model, saved as model directories."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    span_cfg = SpanConfig(hidden=8, model_hidden=8, window=40, stride=20, threshold=-1e9)
    span = SpanAnswerExtractor(SpanNet(span_cfg), span_cfg, questionnaire)
    span.save(root / "answers")
    err_cfg = ClassifierConfig(
        type="errors", labels=["no_introduction", "filler_words"], hidden=8, thresholds=[0.0, 0.0]
    )
    errors = TurnClassifier(TurnAttentionNet(err_cfg), err_cfg, load_lexicon(get_settings().lexicon))
    errors.save(root / "errors")
    return span, errors, root


@pytest.fixture(scope="module")
def triton(models, tmp_path_factory):
    _span, _errors, root = models
    repo = tmp_path_factory.mktemp("triton") / "repository"
    build_repository(repo, {"answers": str(root / "answers"), "errors": str(root / "errors")})
    with TritonServer(repo) as srv:
        yield srv


def _key(answers):
    return [[(a.question_id, a.turn, a.text, a.value) for a in per_call] for per_call in answers]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_triton_answers_and_errors_equal_in_process(protocol, triton, models, supplier_call):
    span, errors, _root = models
    url = triton.http_url if protocol == "http" else triton.grpc_url
    calls = [c.to_call() for c in [*generate_calls(5, seed=7), supplier_call]]
    local = [span.extract(c) for c in calls]
    remote = triton_answer_extractor(span, url)
    assert remote is not span and remote.name == span.name
    assert _key(remote.extract_many(calls)) == _key(local)
    assert _key([remote.extract(c) for c in calls[:2]]) == _key(local[:2])
    assert sum(len(a) for a in local) == len(calls) * len(span.questionnaire.questions)
    remote_conf = [a.confidence for per in remote.extract_many(calls) for a in per]
    assert np.allclose(remote_conf, [a.confidence for per in local for a in per], atol=1e-5)

    on_triton = errors.with_runner(TritonClassifierRunner(TritonRunner(url, "errors")))
    for call in calls[:3]:
        doc = CallDocument.build(call, errors.featurizer.lexicon)
        metrics = text_metrics(doc, errors.featurizer.lexicon, [], [])
        want = [(e.error, e.turn, e.probability) for e in errors.errors(doc, metrics)]
        assert want and [(e.error, e.turn, e.probability) for e in on_triton.errors(doc, metrics)] == want


def test_unknown_model_and_busy_port_are_clear_errors(triton, models):
    span, _errors, _root = models
    with pytest.raises(ModelNotFound, match="nope"):
        triton_answer_extractor(span, triton.grpc_url, model_name="nope")
    with pytest.raises(ServiceUnavailable, match="already in use"):
        TritonServer(triton.repository, http_port=triton.http_port).start()
    closed = TritonServer(triton.repository)  # only to pick a port nobody listens on
    with pytest.raises(ServiceUnavailable):
        triton_answer_extractor(span, closed.http_url)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_api_answers_through_triton_when_its_url_is_set(protocol, triton, models, supplier_call, tmp_path):
    from fastapi.testclient import TestClient

    from callqa.settings import Settings
    from serving.local import local_app

    _span, _errors, root = models
    url = triton.http_url if protocol == "http" else triton.grpc_url
    serving = {"preload_speech": False, "reload_seconds": 0, "answers_model": str(root / "answers")}
    body = {"call_id": "t-1", "turns": [t.model_dump(exclude_none=True) for t in supplier_call.turns]}
    results = []
    for triton_url in (None, url):
        app = local_app(Settings(home=tmp_path, serving=serving, triton_url=triton_url), run_workers=False)
        app.state.service.warm_up()
        with TestClient(app) as client:
            r = client.post("/v1/transcripts", json=body)
        assert r.status_code == 200, r.text
        results.append(
            [(a["question_id"], a["turn"], a["text"], round(a["confidence"], 4)) for a in r.json()["answers"]]
        )
    assert results[0] and results[0] == results[1]


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory, questionnaire):
    """An answer model on a (tiny) pretrained encoder, and a Triton repository that serves both."""
    from callqa.encoder.store import open_encoder
    from callqa.settings import EncoderSettings, Settings
    from callqa.understanding.span_model import SpanFeaturizer
    from tests.builders import make_tiny_encoder

    root = tmp_path_factory.mktemp("encoder-model")
    options = EncoderSettings(path=make_tiny_encoder(root / "tiny"), window=48, stride=32)
    encoder = open_encoder(options.path, options)
    featurizer = SpanFeaturizer(questionnaire, encoder=encoder)
    torch.manual_seed(0)
    cfg = SpanConfig(
        hidden=8, model_hidden=8, window=40, stride=20, threshold=-1e9, encoder=encoder.name,
        word_dim=encoder.hidden, question_dim=int(featurizer.questions.shape[1]), pair_dim=featurizer.pair_dim,
    )  # fmt: skip
    span = SpanAnswerExtractor(SpanNet(cfg), cfg, questionnaire, featurizer=featurizer)
    span.save(root / "answers")
    repo = root / "repository"
    models = build_repository(repo, {"answers": str(root / "answers")}, settings=Settings(encoder=options))
    assert {m.name for m in models} == {"answers", "encoder"}
    with TritonServer(repo) as srv:
        yield span, srv


def test_the_encoder_runs_on_triton_with_the_same_answers(encoder_model, supplier_call):
    """Token ids go to Triton's ``encoder`` model, states come back: the answers are the in-process ones."""
    span, srv = encoder_model
    calls = [c.to_call() for c in [*generate_calls(3, seed=9), supplier_call]]
    local = [span.extract(c) for c in calls]
    remote = triton_answer_extractor(span, srv.grpc_url)
    assert type(remote.featurizer.encoder.backend).__name__ == "TritonStates"
    assert type(span.featurizer.encoder.backend).__name__ == "OnnxStates"  # the in-process one is untouched
    assert _key(remote.extract_many(calls)) == _key(local)
    remote_conf = [a.confidence for per in remote.extract_many(calls) for a in per]
    assert np.allclose(remote_conf, [a.confidence for per in local for a in per], atol=1e-3)
