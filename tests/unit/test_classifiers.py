"""Error and call-type classifiers: features, one real step, quotes, files; the scoring arithmetic."""

from __future__ import annotations

import pytest
import torch

from callqa.errors import ModelNotFound
from callqa.models import load_classifier
from callqa.pipeline import build_text_pipeline
from callqa.schemas import ErrorId
from callqa.synthetic import generate_calls
from callqa.understanding.classifiers import ClassifierConfig, TurnClassifier
from evaluation.metrics import ClassificationScorer
from tests.builders import make_labelled
from training.classifiers import LABELS, ClassifierModule, classifier_loaders, prepare_classifier, tune_thresholds
from training.fit import FitOptions, fit


@pytest.mark.parametrize("task", ["errors", "calltype"])
def test_one_step_then_round_trip_through_the_pipeline(task, tmp_path, questionnaire, supplier_call):
    calls = [*generate_calls(8, seed=5), supplier_call.model_copy(update={"call_type": "cold_call"})]
    data = prepare_classifier(task, calls, questionnaire, show_progress=False)
    cfg = ClassifierConfig(type=task, labels=LABELS[task], hidden=8)
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
