"""The serving benchmark on tiny settings: a 2-layer BERT built here, two short calls."""

from __future__ import annotations

import pytest

from callqa.errors import BadInput
from callqa.modelfiles import CONFIG_FILE
from callqa.understanding.hf_span import HFSpanConfig, render_context
from serving.benchmark import NaiveQAPipeline, long_calls, naive_answers, run_benchmark
from tests.unit.test_hf_backbone import tiny_bert

pytest.importorskip("transformers")


@pytest.fixture
def work_dir(tmp_path):
    """The benchmark's ``hf-tiny`` model prebuilt (tokenizer from a few sentences, not navec: fast)."""
    path = tiny_bert(tmp_path / "bench" / "hf-tiny")
    (path / CONFIG_FILE).write_text(HFSpanConfig(max_length=96, stride=24).model_dump_json(), encoding="utf-8")
    return tmp_path / "bench"


def test_long_calls_are_about_the_asked_length():
    calls = long_calls(2, minutes=2.0, seed=3)
    assert len({c.call_id for c in calls}) == 2
    for call in calls:
        assert 300 <= sum(len(t.text.split()) for t in call.turns) < 300 + 80  # stops within one turn


def test_naive_pipeline_answers_from_the_context_one_forward_per_window(work_dir, questionnaire):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    path = work_dir / "hf-tiny"
    pipe = NaiveQAPipeline(
        AutoModelForQuestionAnswering.from_pretrained(path),
        AutoTokenizer.from_pretrained(path),
        max_seq_len=64,
        doc_stride=16,
        handle_impossible_answer=False,  # always a span: its offsets must point into the context
    )
    (call,) = long_calls(1, minutes=0.5)
    context, _ = render_context(call)
    results = naive_answers(pipe, questionnaire, call)
    assert len(results) == len(questionnaire.questions)
    assert pipe.forwards > len(questionnaire.questions)  # a long context: several windows per question
    for r in results:
        assert r.answer and context[r.start : r.end] == r.answer and 0 < r.score <= 1


def test_run_benchmark_tiny(work_dir, questionnaire):
    report = run_benchmark(
        calls=2, minutes=0.5, hf_sizes=("tiny",), batch_size=2, repeat=1, work_dir=work_dir, progress=False
    )
    assert report.calls == 2 and report.questions == len(questionnaire.questions)
    assert 60 <= report.words_per_call < 140
    (hf,) = report.hf
    assert hf.size.name == "tiny"
    assert hf.batched_equals_per_call  # batching changes the speed, not the answers
    assert hf.batched.calls == hf.naive.calls == 2
    assert hf.batched.calls_per_s > 0 and hf.naive.calls_per_s > 0
    assert hf.speedup == pytest.approx(hf.batched.calls_per_s / hf.naive.calls_per_s, rel=0.05)
    assert hf.naive_forwards_per_call >= len(questionnaire.questions)
    assert hf.batched_windows_per_call >= len(questionnaire.questions)
    d = report.default
    assert d is not None and not d.trained
    assert d.answers_latency.samples == d.pipeline_latency.samples == 2
    assert 0 < d.pipeline_latency.p50_ms <= d.pipeline_latency.p99_ms
    assert set(d.speedup_vs_naive) == {"tiny"} and d.batched.calls_per_s > 0
    md = report.markdown()
    assert "| tiny (2×32, 2 heads)" in md and "text pipeline" in md
    assert report.as_dict()["hf"][0]["size"]["hidden"] == 32


def test_run_benchmark_rejects_unknown_sizes():
    with pytest.raises(BadInput):
        run_benchmark(calls=1, hf_sizes=("huge",), progress=False)
