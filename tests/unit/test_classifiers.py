"""Error and call-type classifiers: features, one real step, quotes, files; the scoring arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from callqa.errors import ModelNotFound
from callqa.models import load_classifier
from callqa.pipeline import build_text_pipeline
from callqa.questionnaire import load_questionnaire
from callqa.schemas import ErrorId
from callqa.settings import get_settings
from callqa.synthetic import generate_calls
from callqa.text.lexicon import load_lexicon
from callqa.understanding.answers import ZeroShotAnswerExtractor
from callqa.understanding.classifiers import (
    HASH_DIM,
    METRIC_FEATURES,
    TURN_FLAGS,
    WORD_DIM,
    ClassifierConfig,
    TurnAttentionNet,
    TurnClassifier,
    error_cues,
)
from callqa.understanding.document import CallDocument
from callqa.understanding.metrics import text_metrics
from evaluation.metrics import ClassificationScorer
from tests.builders import make_labelled
from training.classifiers import LABELS, ClassifierModule, classifier_loaders, prepare_classifier, tune_thresholds
from training.fit import FitOptions, fit


@pytest.mark.parametrize("task", ["errors", "calltype"])
def test_one_step_then_round_trip_through_the_pipeline(task, tmp_path, questionnaire, supplier_call):
    calls = [*generate_calls(8, seed=5), supplier_call.model_copy(update={"call_type": "cold_call"})]
    data = prepare_classifier(task, calls, questionnaire, show_progress=False)
    cfg = ClassifierConfig(type=task, labels=LABELS[task], hidden=8, metric_dim=data.featurizer.metric_dim)
    module = ClassifierModule(cfg)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    train, val = classifier_loaders(data, batch_size=4, seed=0)
    assert fit(module, train, val, FitOptions(max_epochs=1, max_steps=1, progress=False))["steps"] == 1
    assert any(not torch.equal(before[k], v) for k, v in module.net.state_dict().items())
    clf = TurnClassifier(module.net, cfg, data.featurizer.lexicon)
    tune_thresholds(clf, data.calibration)
    if task == "errors":
        assert len(cfg.thresholds) == len(ErrorId)
        cfg.thresholds = [0.0] * len(ErrorId)  # flag everything: every flag must carry a quote
    clf.save(tmp_path / task)
    loaded = load_classifier(str(tmp_path / task), task)
    pipe = build_text_pipeline(questionnaire, errors=loaded if task == "errors" else None,
                               call_type=loaded if task == "calltype" else None)  # fmt: skip
    result = pipe.analyze(supplier_call.to_call())
    if task == "errors":
        assert {e.error for e in result.errors} == set(ErrorId)
        for e in result.errors:
            assert e.quote and e.quote.rstrip("…") in supplier_call.turns[e.turn].text
    else:
        assert result.call_type is not None and result.call_type.spam == (result.call_type.call_type == "spam")
        assert result.errors is None
    assert result.models[task] == loaded.name


def test_wrong_kind_of_model_is_refused(tmp_path, questionnaire):
    cfg = ClassifierConfig(type="calltype", labels=LABELS["calltype"], hidden=4)
    from callqa.settings import get_settings
    from callqa.text.lexicon import load_lexicon
    from callqa.understanding.classifiers import TurnAttentionNet

    TurnClassifier(TurnAttentionNet(cfg), cfg, load_lexicon(get_settings().lexicon)).save(tmp_path / "ct")
    with pytest.raises(ModelNotFound, match="not a errors model"):
        load_classifier(str(tmp_path / "ct"), "errors")


def test_classification_scores():
    a = make_labelled(("AGENT", "Алло"), ("CLIENT", "Да"), call_id="a", errors=["no_introduction", "no_next_step"],
                      call_type="cold_call")  # fmt: skip
    b = make_labelled(("AGENT", "Алло"), ("CLIENT", "Да"), call_id="b", errors=[], call_type="spam")
    scorer = ClassificationScorer(e.value for e in ErrorId)
    scorer.add(a, ["no_introduction", "filler_words"], "cold_call")
    scorer.add(b, [], "cold_call")
    m = scorer.result()
    assert m.per_error["no_introduction"].f1 == 1.0
    assert m.per_error["no_next_step"].f1 == 0.0  # missed
    assert m.per_error["filler_words"].f1 == 0.0  # false alarm
    assert m.per_error["interruption"].f1 == 1.0  # never gold, never flagged
    assert m.error_macro_f1 == pytest.approx(6 / 8)
    assert m.call_type_accuracy == 0.5
    assert ClassificationScorer(["x"]).result().error_macro_f1 is None  # no error model ran


def _cues(call):
    lexicon = load_lexicon(get_settings().lexicon)
    zs = ZeroShotAnswerExtractor(load_questionnaire())
    doc = CallDocument.build(call.to_call(), lexicon)
    metrics = text_metrics(doc, lexicon, zs.topics_asked(doc), zs.question_ids)
    return dict(zip(ErrorId, error_cues(doc, metrics, lexicon).tolist(), strict=True))


def test_error_cues_read_a_weak_call_like_a_supervisor():
    weak = make_labelled(
        ("AGENT", "Здравствуйте, это мебельная фабрика, короче, у нас скидочки сейчас на кресла."),
        ("CLIENT", "Нам ничего не надо, у нас свой поставщик, и вообще я —"),
        ("AGENT", "Ну, типа, недорого совсем. Ну ладно, извините."),
        ("CLIENT", "До свидания."),
    )
    cues = _cues(weak)
    for error in (ErrorId.NO_INTRODUCTION, ErrorId.FILLER_WORDS, ErrorId.OBJECTION_NOT_HANDLED, ErrorId.NO_NEXT_STEP,
                  ErrorId.INTERRUPTION, ErrorId.VALUE_REDUCING_WORDS, ErrorId.NO_NEEDS_DISCOVERY,
                  ErrorId.INCOMPLETE_QUALIFICATION):  # fmt: skip
        assert cues[error] == 1.0, error


def test_error_cues_stay_quiet_on_a_good_call():
    good = make_labelled(
        ("AGENT", "Добрый день! Это Роман, компания «ТехноПривод». Виктор Павлович, удобно пару минут?"),
        ("CLIENT", "Да, слушаю."),
        ("AGENT", "У кого сейчас закупаете? И что планируете докупать в этом году?"),
        ("CLIENT", "Берём у Абамета. Планируем ещё один токарный станок."),
        ("AGENT", "Что для вас главное при выборе? Кто у вас решает по закупке?"),
        ("CLIENT", "Сервис. Решает генеральный. Дорого у вас, наверное?"),
        ("AGENT", "Смотря с чем сравнивать: давайте я посчитаю с доставкой и сервисом?"),
        ("CLIENT", "Давайте."),
        ("AGENT", "Договорились: пришлю расчёт и наберу вас в четверг утром."),
        ("CLIENT", "Хорошо, до четверга."),
    )
    cues = _cues(good)
    assert all(cues[e] == 0.0 for e in ErrorId if e != ErrorId.INCOMPLETE_QUALIFICATION), cues


def test_a_client_named_in_the_greeting_is_not_the_agent_introducing_himself():
    call = make_labelled(("AGENT", "Лариса Фёдоровна, здравствуйте. Ну что, посмотрели наше предложение?"),
                         ("CLIENT", "Да, смотрела."))  # fmt: skip
    assert _cues(call)[ErrorId.NO_INTRODUCTION] == 1.0
    raw = make_labelled(("AGENT", "компания зерномаш роман добрый день"), ("CLIENT", "здравствуйте"))
    assert _cues(raw)[ErrorId.NO_INTRODUCTION] == 0.0  # "роман" is also a first name


def test_path_drop_trains_the_call_level_path_alone_and_never_serves_that_way():
    cfg = ClassifierConfig(type="errors", labels=LABELS["errors"], hidden=8, path_drop=0.75)
    net = TurnAttentionNet(cfg)
    turns, metrics = (
        torch.randn(1, 5, WORD_DIM + HASH_DIM + TURN_FLAGS).repeat(200, 1, 1),
        torch.rand(1, METRIC_FEATURES),
    )
    metrics, lengths = metrics.repeat(200, 1), torch.full((200,), 5)
    call_level = net.metrics(metrics[:1]) + net.bias
    net.train()
    logits, _ = net(turns, metrics, lengths)
    alone = torch.isclose(logits, call_level.expand_as(logits), atol=1e-6).all(-1).float().mean()
    assert 0.6 < alone < 0.9  # about 3 calls in 4 read only metrics and cues
    net.eval()
    served, _ = net(turns, metrics, lengths)
    assert torch.allclose(served, served[:1].expand_as(served)) and not torch.allclose(served[:1], call_level)


def test_tied_thresholds_take_the_middle_of_the_range(questionnaire, supplier_call):
    cfg = ClassifierConfig(type="errors", labels=LABELS["errors"], hidden=8)
    clf = TurnClassifier(TurnAttentionNet(cfg), cfg, load_lexicon(get_settings().lexicon))
    items = prepare_classifier("errors", generate_calls(6, seed=5), questionnaire, show_progress=False).train
    clf.scores = lambda v: (np.where(v.target > 0.5, 0.99, 0.01), None)  # perfectly separated
    tune_thresholds(clf, items)
    assert cfg.thresholds == [0.5] * len(ErrorId)
