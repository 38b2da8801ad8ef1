"""The answer, error and call-type models on a pretrained encoder: one real training step each on a tiny
encoder built in the test, the files round trip, and the end-to-end (GPU) recipe's step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from callqa.encoder.runtime import load_hf_encoder
from callqa.encoder.store import text_encoder
from callqa.models import load_answer_extractor, load_classifier
from callqa.pipeline import build_text_pipeline
from callqa.schemas import ErrorId
from callqa.settings import get_settings
from callqa.synthetic import generate_calls
from callqa.understanding.classifiers import ClassifierConfig, TurnClassifier
from callqa.understanding.span_model import MEANING_FEATURES, PAIR_FEATURES, SpanAnswerExtractor, SpanConfig
from training.answers import SpanModule, calibrate, loaders, prepare
from training.classifiers import LABELS, ClassifierModule, classifier_loaders, prepare_classifier
from training.finetune import ENCODER_DIR, EndToEndSpanModule, finetune_collate, in_memory_encoder, save_encoder
from training.fit import FitOptions, fit


@pytest.fixture
def tiny(tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch):
    """The tiny encoder as the configured one, run by PyTorch."""
    monkeypatch.setenv("CALLQA_ENCODER__PATH", str(tiny_encoder))
    monkeypatch.setenv("CALLQA_ENCODER__RUNTIME", "torch")
    monkeypatch.setenv("CALLQA_ENCODER__WINDOW", "64")
    monkeypatch.setenv("CALLQA_ENCODER__STRIDE", "48")
    get_settings.cache_clear()
    return text_encoder()


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def _span_config(data, tiny, questionnaire, **extra) -> SpanConfig:
    """A small answer head on the tiny encoder, sized to the featurised data."""
    return SpanConfig(
        questionnaire=questionnaire.name,
        hidden=8,
        model_hidden=8,
        encoder=tiny.name,
        word_dim=tiny.hidden,
        question_dim=int(data.featurizer.questions.shape[1]),
        pair_dim=data.featurizer.pair_dim,
        **extra,
    )


def test_answer_model_on_the_encoder_trains_and_round_trips(tiny, tmp_path, questionnaire, supplier_call):
    calls = [*generate_calls(5, seed=3), supplier_call]
    data = prepare(calls, questionnaire, show_progress=False, encoder=tiny)
    f = data.train[0]
    assert f.words.shape[1] == tiny.hidden and f.pair.shape[2] == len(PAIR_FEATURES) + len(MEANING_FEATURES)
    cfg = _span_config(data, tiny, questionnaire)
    module = SpanModule(cfg, data.featurizer.questions)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    train, val = loaders(data, cfg, batch_size=4, seed=0)
    assert fit(module, train, val, FitOptions(max_epochs=1, max_steps=1, progress=False))["steps"] == 1
    assert _changed(before, module.net)
    # question texts varied in training: the served vector or one text's, drawn per batch; validation as served
    served = data.featurizer.questions
    variants = data.featurizer.question_variants()
    first = questionnaire.questions[0]
    assert variants[0].shape == (2 + len(first.paraphrases), served.shape[1])
    assert np.array_equal(variants[0][0], served[0]) and not np.allclose(variants[0][1], served[0])
    varied, val = loaders(data, cfg, batch_size=4, seed=0, vary_questions=True)
    drawn = [batch["questions"].numpy() for _ in range(3) for batch in varied]
    assert any(not np.array_equal(q, served) for q in drawn)
    assert all(np.array_equal(b["questions"].numpy(), served) for b in (val or []))
    extractor = SpanAnswerExtractor(module.net, cfg, questionnaire, featurizer=data.featurizer)
    calibrate(extractor, data.calibration or data.train)
    extractor.config.threshold = -1e9  # answer everything: the round trip must agree on every answer
    extractor.save(tmp_path / "m")
    loaded = load_answer_extractor(str(tmp_path / "m"), questionnaire)
    assert isinstance(loaded, SpanAnswerExtractor) and loaded.featurizer.encoder.name == tiny.name
    a1 = extractor.extract(supplier_call.to_call())
    a2 = loaded.extract(supplier_call.to_call())
    assert [(a.question_id, a.text) for a in a1] == [(a.question_id, a.text) for a in a2]
    assert len(a1) == len(questionnaire.questions)


def test_a_model_trained_on_another_encoder_is_refused(tiny, tmp_path, questionnaire):
    from callqa.errors import ModelNotFound
    from callqa.modelfiles import save_model_dir
    from callqa.understanding.span_model import SpanNet

    cfg = SpanConfig(encoder="some-other-encoder:0123456789ab", word_dim=tiny.hidden, hidden=4, model_hidden=4)
    save_model_dir(SpanNet(cfg), cfg, tmp_path / "m")
    with pytest.raises(ModelNotFound, match="trained on encoder"):
        load_answer_extractor(str(tmp_path / "m"), questionnaire)


def test_end_to_end_step_trains_the_encoder_and_serves_it(tiny, tiny_encoder, tmp_path, questionnaire, supplier_call):
    """The GPU recipe's code on CPU: one step moves both the head and the encoder; the saved model
    carries its own encoder and answers as it did in memory."""
    calls = [*generate_calls(4, seed=7), supplier_call]
    data = prepare(calls, questionnaire, show_progress=False, encoder=tiny)
    cfg = _span_config(data, tiny, questionnaire, window=40, stride=20)
    model, tokenizer = load_hf_encoder(tiny_encoder)
    module = EndToEndSpanModule(cfg, data.featurizer.questions, model, encoder_lr=1e-3)
    head_before = {k: v.clone() for k, v in module.net.state_dict().items()}
    enc_before = {k: v.clone() for k, v in module.encoder.state_dict().items()}
    windows = data.train_windows(cfg)[:4]
    batch = finetune_collate(windows, data.featurizer.questions, tiny)
    # each word's pooling row averages its own tokens
    rows = batch["pool"].sum(-1)
    assert torch.allclose(rows[rows > 0], torch.ones_like(rows[rows > 0]))
    loader = torch.utils.data.DataLoader(
        windows, batch_size=4, collate_fn=lambda b: finetune_collate(b, data.featurizer.questions, tiny)
    )
    assert fit(module, loader, None, FitOptions(max_epochs=1, max_steps=1, progress=False))["steps"] == 1
    assert _changed(head_before, module.net) and _changed(enc_before, module.encoder)
    tuned_id = save_encoder(module.encoder, tokenizer, tmp_path / "m" / ENCODER_DIR, tiny.name)
    tuned = in_memory_encoder(module.encoder, tiny, tuned_id)
    cfg.encoder = tuned_id
    from callqa.understanding.span_model import SpanFeaturizer

    extractor = SpanAnswerExtractor(
        module.net, cfg, questionnaire, featurizer=SpanFeaturizer(questionnaire, encoder=tuned)
    )
    extractor.config.threshold = -1e9
    extractor.save(tmp_path / "m")
    loaded = load_answer_extractor(str(tmp_path / "m"), questionnaire)
    assert loaded.featurizer.encoder.name == tuned_id != tiny.name
    a1 = extractor.extract(supplier_call.to_call())
    a2 = loaded.extract(supplier_call.to_call())
    assert [(a.question_id, a.text) for a in a1] == [(a.question_id, a.text) for a in a2]


@pytest.mark.parametrize("task", ["errors", "calltype"])
def test_classifiers_on_the_encoder_train_and_round_trip(task, tiny, tmp_path, questionnaire, supplier_call):
    calls = [*generate_calls(8, seed=5), supplier_call.model_copy(update={"call_type": "cold_call"})]
    data = prepare_classifier(task, calls, questionnaire, show_progress=False, encoder=tiny)
    assert data.train[0].turns.shape[1] == data.featurizer.turn_dim == tiny.hidden + 13
    cfg = ClassifierConfig(
        type=task,
        labels=LABELS[task],
        hidden=8,
        encoder=tiny.name,
        turn_dim=data.featurizer.turn_dim,
        metric_dim=data.featurizer.metric_dim,
    )
    module = ClassifierModule(cfg)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    train, val = classifier_loaders(data, batch_size=4, seed=0)
    assert fit(module, train, val, FitOptions(max_epochs=1, max_steps=1, progress=False))["steps"] == 1
    assert _changed(before, module.net)
    clf = TurnClassifier(module.net, cfg, data.featurizer.lexicon, featurizer=data.featurizer)
    if task == "errors":
        cfg.thresholds = [0.0] * len(ErrorId)  # flag everything: every flag must carry a quote
    clf.save(tmp_path / task)
    loaded = load_classifier(str(tmp_path / task), task)
    assert loaded.featurizer.encoder is not None and loaded.featurizer.encoder.name == tiny.name
    kwargs = {"errors": loaded} if task == "errors" else {"call_type": loaded}
    result = build_text_pipeline(questionnaire, **kwargs).analyze(supplier_call.to_call())
    if task == "errors":
        assert {e.error for e in result.errors} == set(ErrorId)
        assert all(e.quote.rstrip("…") in supplier_call.turns[e.turn].text for e in result.errors)
    else:
        direct = clf.call_type(*_doc_and_metrics(clf, questionnaire, supplier_call))
        assert result.call_type.call_type == direct.call_type


def _doc_and_metrics(clf, questionnaire, call):
    from callqa.understanding.answers import ZeroShotAnswerExtractor
    from callqa.understanding.document import CallDocument
    from callqa.understanding.metrics import text_metrics

    zs = ZeroShotAnswerExtractor(questionnaire, lexicon=clf.featurizer.lexicon)
    doc = CallDocument.build(call.to_call(), clf.featurizer.lexicon)
    return doc, text_metrics(doc, clf.featurizer.lexicon, zs.topics_asked(doc), zs.question_ids)
