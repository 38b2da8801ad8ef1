"""The HuggingFace backbone: a tiny BERT built here (no hub), one real fine-tuning step, saved and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from callqa.models import load_answer_extractor
from callqa.understanding.hf_span import HFSpanAnswerExtractor, HFSpanConfig, render_context
from training.fit import FitOptions
from training.jobs import TrainSpec, train

SENTENCES = [
    "Добрый день, меня зовут Ольга, компания ТехноСнаб.",
    "Мы берём подшипники у Подшипник-Центра уже пять лет.",
    "Последняя закупка была на полтора миллиона рублей.",
    "Решение принимает генеральный директор, Сергей Петрович.",
    "Следующую закупку планируем весной, в апреле или мае.",
    "Кто у вас сейчас поставщик? Какой бюджет? Когда закупка?",
    "ещё нам важны сроки доставки и цена, отсрочка платежа",
]


def tiny_bert(path: Path) -> Path:
    """A 2-layer BERT QA model with a WordPiece tokenizer trained on a few Russian sentences."""
    from serving.benchmark import HFSize, build_hf_model

    size = HFSize("test", hidden=32, layers=2, heads=2, intermediate=64, vocab=600)
    return build_hf_model(size, path, SENTENCES * 5)


def test_render_context_keeps_turn_offsets(supplier_call):
    context, spans = render_context(supplier_call.to_call())
    for turn, start, end in spans:
        assert context[start:end] == supplier_call.turns[turn].text


def test_fine_tune_one_step_and_reload(tmp_path, questionnaire, supplier_call):
    pytest.importorskip("transformers")
    backbone = tiny_bert(tmp_path / "tiny-bert")
    spec = TrainSpec(
        task="answers",
        synthetic=4,
        backbone=str(backbone),
        fit=FitOptions(max_epochs=1, max_steps=1, batch_size=8, lr=1e-3, progress=False),
        register=False,
    )
    outcome = train(spec, out_dir=tmp_path / "model")
    assert outcome.metrics["steps"] == 1
    extractor = load_answer_extractor(str(outcome.model_dir), questionnaire)
    assert isinstance(extractor, HFSpanAnswerExtractor)
    extractor.config.threshold = -1e9  # answer every question: spans must map back into client turns
    answers = extractor.extract(supplier_call.to_call())
    assert len(answers) == len(questionnaire.questions)
    for a in answers:
        turn = supplier_call.turns[a.turn]
        assert turn.speaker == "CLIENT" and turn.text[a.char_start : a.char_end] == a.text


def test_extract_many_equals_extract_per_call(tmp_path, questionnaire, supplier_call):
    """A batch of calls (all questions × windows of all of them together) answers as each call alone."""
    pytest.importorskip("transformers")
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from callqa.synthetic import generate_calls

    path = tiny_bert(tmp_path / "tiny-bert")
    extractor = HFSpanAnswerExtractor(
        AutoModelForQuestionAnswering.from_pretrained(path),
        AutoTokenizer.from_pretrained(path),
        HFSpanConfig(threshold=-1e9, max_length=64, stride=16),  # answer every question, many windows
        questionnaire,
        max_batch_windows=7,  # several forwards, split across calls' windows
    )
    calls = [supplier_call.to_call(), *(c.to_call() for c in generate_calls(3, seed=5))]
    alone = [extractor.extract(call) for call in calls]
    together = extractor.extract_many(calls)
    assert [len(a) for a in together] == [len(questionnaire.questions)] * len(calls)
    for one, many in zip(alone, together, strict=True):
        assert [(a.question_id, a.turn, a.char_start, a.char_end, a.text) for a in many] == [
            (a.question_id, a.turn, a.char_start, a.char_end, a.text) for a in one
        ]
        assert [a.confidence for a in many] == pytest.approx([a.confidence for a in one], abs=1e-4)
