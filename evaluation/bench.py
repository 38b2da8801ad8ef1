"""``make bench``: how fast text understanding is, per call and for a 5-minute transcript."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from callqa.dataset import expand_paths, read_labelled_many
from callqa.pipeline import build_text_pipeline
from callqa.questionnaire import load_questionnaire
from callqa.schemas import Call, LabelledCall, Turn

WORDS_PER_MINUTE = 150  # conversational Russian


def long_call(calls: Sequence[LabelledCall], minutes: float) -> Call:
    """A transcript of about ``minutes`` of speech, stitched from real calls' turns."""
    target = int(minutes * WORDS_PER_MINUTE)
    turns: list[Turn] = []
    words = 0
    while words < target:
        for call in calls:
            for turn in call.turns:
                turns.append(turn)
                words += len(turn.text.split())
                if words >= target:
                    break
            if words >= target:
                break
    return Call(call_id=f"long-{minutes:g}min", turns=turns)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def text_pipeline(models: dict[str, str | None] | None, q):
    """The text pipeline with the given model references (answers, errors, calltype; None: zero-shot / none)."""
    from callqa.models import ZERO_SHOT, load_answer_extractor, load_classifier

    models = models or {}
    extractor = load_answer_extractor(models.get("answers") or ZERO_SHOT, q)
    errors = load_classifier(models["errors"], "errors") if models.get("errors") else None
    call_type = load_classifier(models["calltype"], "calltype") if models.get("calltype") else None
    return build_text_pipeline(q, extractor, errors=errors, call_type=call_type)


def run_text_bench(
    patterns: Sequence[Path],
    repeat: int,
    out: Path | None,
    console: Console,
    models: dict[str, str | None] | None = None,
) -> dict:
    """Latency of the whole text stage (prepare + answers + metrics, and errors and call type when their
    models are given) on real and 5-minute calls; the encoder's pass is part of it."""
    q = load_questionnaire()
    calls = read_labelled_many(expand_paths(patterns), q)
    pipeline = text_pipeline(models, q)
    pipeline.analyze(calls[0].to_call())  # warm-up: embeddings and dictionaries load once
    per_call: list[float] = []
    for _ in range(repeat):
        for call in calls:
            started = time.perf_counter()
            pipeline.analyze(call.to_call())
            per_call.append(time.perf_counter() - started)
    five = long_call(calls, 5.0)
    five_samples = []
    for _ in range(max(5, repeat * 3)):
        started = time.perf_counter()
        pipeline.analyze(five)
        five_samples.append(time.perf_counter() - started)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "models": pipeline.models,
        "calls": len(calls),
        "turns_per_call": statistics.fmean(len(c.turns) for c in calls),
        "per_call": _percentiles(per_call),
        "five_minute_transcript": {
            "words": sum(len(t.text.split()) for t in five.turns),
            **_percentiles(five_samples),
        },
    }
    names = ", ".join(f"{k} {v}" for k, v in pipeline.models.items())
    table = Table(title=f"text understanding latency (CPU, one process; {names})", title_justify="left")
    for col in ("input", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "input" else "left")
    for name, row in (
        ("dev call", result["per_call"]),
        ("5-minute transcript", result["five_minute_transcript"]),
    ):
        table.add_row(name, f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['mean_ms']:.1f}")
    console.print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        console.print(f"wrote {out}")
    return result
