"""The trained answer extractor: features, network, decoding, one real training step, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from callqa.errors import ModelNotFound
from callqa.models import load_answer_extractor
from callqa.synthetic import generate_calls
from callqa.understanding.span_model import (
    PAIR_FEATURES,
    TOKEN_FEATURES,
    SpanAnswerExtractor,
    SpanConfig,
    SpanFeaturizer,
    SpanNet,
    best_spans,
    collate,
    windows,
)
from training.answers import SpanModule, calibrate, loaders, prepare, renderings
from training.fit import FitOptions, fit


@pytest.fixture(scope="module")
def featurizer(questionnaire) -> SpanFeaturizer:
    return SpanFeaturizer(questionnaire)


def test_features_and_gold_spans(featurizer, supplier_call):
    f = featurizer.features(supplier_call.to_call(), labelled=supplier_call)
    n, q = len(f), len(featurizer.questionnaire.questions)
    assert f.words.shape == (n, 300) and f.feats.shape == (n, len(TOKEN_FEATURES))
    assert f.pair.shape == (n, q, len(PAIR_FEATURES))
    qids = [p.question.id for p in featurizer.zero_shot.profiles]
    supplier = f.gold[qids.index("current_supplier")]
    a, b = supplier
    turn = int(f.turn_of[a])
    text = supplier_call.turns[turn].text[f.spans[a][0] : f.spans[b][1]]
    assert text == "берём у Подшипник-Центра"
    assert f.gold[qids.index("next_purchase")] is None  # labelled "no answer"
    assert all(f.candidates[i] == (supplier_call.turns[int(f.turn_of[i])].speaker == "CLIENT") or not f.feats[i, 4]
               for i in range(n))  # fmt: skip


def test_windows_cover_every_token_and_targets_shift(featurizer, supplier_call):
    f = featurizer.features(supplier_call.to_call(), labelled=supplier_call)
    ws = windows(f, size=20, stride=10)
    covered = set()
    for w in ws:
        covered |= set(range(w.lo, w.hi))
    assert covered == set(range(len(f)))
    qi = [p.question.id for p in featurizer.zero_shot.profiles].index("current_supplier")
    a, b = f.gold[qi]
    inside = [w for w in ws if w.lo <= a and b < w.hi]
    starts, ends = inside[0].targets()
    assert (starts[qi], ends[qi]) == (a - inside[0].lo + 1, b - inside[0].lo + 1)
    outside = [w for w in ws if b < w.lo]
    if outside:
        assert outside[0].targets()[0][qi] == 0


def test_best_spans_respects_turns_and_length():
    start = torch.full((1, 6), -5.0)
    end = torch.full((1, 6), -5.0)
    start[0, 0] = end[0, 0] = 0.0  # no answer
    start[0, 2] = 4.0  # token 1
    end[0, 5] = 4.0  # token 4, but another turn
    end[0, 3] = 3.0  # token 2, same turn
    turn_of = torch.tensor([0, 1, 1, 1, 2])
    a, b, margin = best_spans(start, end, turn_of, max_tokens=3)
    assert (int(a[0]), int(b[0])) == (1, 2)
    assert math.isclose(float(margin[0]), 7.0)


def test_one_training_step_changes_weights_and_round_trips(tmp_path, questionnaire, supplier_call):
    calls = [*generate_calls(6, seed=3), supplier_call]
    data = prepare(calls, questionnaire, show_progress=False)
    cfg = SpanConfig(questionnaire=questionnaire.name, hidden=16, model_hidden=8)
    module = SpanModule(cfg, data.featurizer.questions)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    train, val = loaders(data, cfg, batch_size=4, seed=0)
    batch = next(iter(train))
    assert batch["start"].shape == (4, len(questionnaire.questions))
    metrics = fit(module, train, val, FitOptions(max_epochs=1, max_steps=1, progress=False))
    assert metrics["steps"] == 1
    assert any(not torch.equal(before[k], v) for k, v in module.net.state_dict().items())
    extractor = SpanAnswerExtractor(module.net, cfg, questionnaire, featurizer=data.featurizer)
    cal = calibrate(extractor, data.calibration or data.train)
    assert {"threshold", "ece_before", "ece_after"} <= set(cal)
    extractor.config.threshold = -1e9  # answer everything: the round trip must agree on every answer
    extractor.save(tmp_path / "m")
    loaded = load_answer_extractor(str(tmp_path / "m"), questionnaire)
    assert isinstance(loaded, SpanAnswerExtractor)
    a1 = extractor.extract(supplier_call.to_call())
    a2 = loaded.extract(supplier_call.to_call())
    assert [(a.question_id, a.text, a.confidence) for a in a1] == [(a.question_id, a.text, a.confidence) for a in a2]
    assert len(a1) == len(questionnaire.questions)
    for ans in a1:
        turn = supplier_call.turns[ans.turn]
        assert turn.speaker == "CLIENT" and turn.text[ans.char_start : ans.char_end] == ans.text
        assert 0 <= ans.confidence <= 1


def test_network_masks_agent_tokens(featurizer, supplier_call):
    f = featurizer.features(supplier_call.to_call())
    batch = collate(windows(f, 400, 200), featurizer.questions)
    net = SpanNet(SpanConfig(hidden=8, model_hidden=8)).eval()
    with torch.no_grad():
        start, end = net(
            batch["words"], batch["feats"], batch["pair"], batch["questions"], batch["lengths"], batch["candidates"]
        )
    agent = ~batch["candidates"][0]
    assert (start[0, :, 1:][:, agent] <= -1e3).all() and (end[0, :, 1:][:, agent] <= -1e3).all()
    assert np.isfinite(start[0, :, 0].numpy()).all()


def test_broken_model_directories_are_refused(tmp_path, questionnaire):
    with pytest.raises(ModelNotFound, match="neither"):
        load_answer_extractor(str(tmp_path), questionnaire)
    (tmp_path / "model.json").write_text('{"type": "span", "feature_version": 1}')
    (tmp_path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelNotFound, match="unreadable weights"):
        load_answer_extractor(str(tmp_path), questionnaire)
    (tmp_path / "model.json").write_text('{"type": "span", "feature_version": 99}')
    with pytest.raises(ModelNotFound, match="features v99"):
        load_answer_extractor(str(tmp_path), questionnaire)


def test_labelled_calls_also_train_in_their_raw_asr_form(questionnaire, supplier_call):
    data = prepare([*generate_calls(4, seed=3), supplier_call], questionnaire, labelled_weight=4, show_progress=False,
                   calibration_share=0.0)  # fmt: skip
    (raw,) = data.variants[supplier_call.call_id]
    assert raw.call_id == f"{supplier_call.call_id}~asr"
    assert any(g not in (None, False) for g in raw.gold)  # the answers were re-rendered, not lost
    cfg = SpanConfig(window=10_000)
    used = [w.call.call_id for w in data.train_windows(cfg)]
    assert used.count(supplier_call.call_id) == 2 and used.count(raw.call_id) == 2  # the weight, shared
    assert sum(u.startswith("syn-") for u in used) == 4  # synthetic calls once, no variants
    assert renderings(renderings(supplier_call, questionnaire)[0], questionnaire) == []  # raw text has no other form


def test_the_kept_weights_are_the_running_average(questionnaire):
    module = SpanModule(SpanConfig(hidden=8, model_hidden=8), np.zeros((2, 310), np.float32), ema_decay=0.5)
    assert not any(p.requires_grad for p in module.ema.parameters())  # never trained, never in the optimiser
    first = [p.detach().clone() for p in module.net.parameters()]
    module.on_train_batch_end(None, None, 0)
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(1.0)
    module.on_train_batch_end(None, None, 1)
    fresh = SpanModule(SpanConfig(hidden=8, model_hidden=8), np.zeros((2, 310), np.float32), ema_decay=0.5)
    fresh.load_state_dict(module.state_dict())  # what Ray Train hands back: the average travels with it
    for m in (module, fresh):
        m.use_average()
        for p, p0 in zip(m.net.parameters(), first, strict=True):
            assert torch.allclose(p, p0 + 0.5)


def test_labelled_calls_all_train_when_synthetic_ones_can_calibrate(questionnaire, supplier_call):
    calls = [*generate_calls(8, seed=3), supplier_call]
    data = prepare(calls, questionnaire, calibration_share=0.5, show_progress=False, span_style=False)
    assert supplier_call.call_id in {c.call_id for c in data.train_calls}
    assert data.calibration_calls and all(c.call_id.startswith("syn-") for c in data.calibration_calls)
    assert len(data.train_calls) + len(data.calibration_calls) == len(calls)
    alone = prepare([supplier_call, supplier_call.model_copy(update={"call_id": "l-2"})], questionnaire,
                    calibration_share=0.5, show_progress=False)  # fmt: skip
    assert len(alone.calibration_calls) == 1  # no synthetic calls: a labelled one calibrates
