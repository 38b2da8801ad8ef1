"""``callqa bench-speech``: real-time factor per stage and peak memory for 1-, 5- and 20-minute calls.

Long calls are made by speaking generated calls one after another (telephone, mono). Each
length runs in a fresh process, so its peak memory is its own and model loading is counted
apart from processing.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from callqa.settings import get_settings

STAGES = ("decode", "vad", "diarization", "asr", "roles", "understanding")


def long_recording(minutes: float, out_dir: Path, seed: int = 0) -> Path:
    """A mono telephone recording of about ``minutes``, spoken from generated calls (cached by length)."""
    from callqa.speech.audio import write_wav
    from callqa.speech.synth import PHONE_RATE, render_call
    from callqa.synthetic import generate_calls

    path = out_dir / f"bench-{minutes:g}min.wav"
    if path.is_file():
        return path
    target = int(minutes * 60 * PHONE_RATE)
    pieces, total, k = [], 0, 0
    while total < target:
        for call in generate_calls(8, seed + k, asr_share=0.0):
            audio = render_call(call, seed=seed).audio[0]
            pieces.append(audio)
            total += len(audio)
            if total >= target:
                break
        k += 1
    samples = np.concatenate(pieces)[:target]
    return write_wav(path, samples, PHONE_RATE)


def measure(path: Path) -> dict:
    """Analyse one recording in this process: seconds per stage, load time, peak memory."""
    from callqa.pipeline import CallAnalyzer
    from callqa.questionnaire import load_questionnaire
    from callqa.speech.audio import load_audio

    started = time.perf_counter()
    analyzer = CallAnalyzer(load_questionnaire())
    speech = analyzer.speech
    # load everything before the clock starts, as a server does once: the models and NeMo's
    # ~10 s import happen on first use, so a short piece of the recording goes through first
    sp = analyzer.settings.speech
    warm = load_audio(path, max_seconds=sp.max_audio_seconds, silence_dbfs=sp.silence_dbfs)
    speech.run(replace(warm, samples=warm.samples[:, : 30 * warm.sample_rate]), call_id="warm-up")
    load_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    audio = load_audio(path, max_seconds=sp.max_audio_seconds, silence_dbfs=sp.silence_dbfs)
    decode = time.perf_counter() - t0
    result = speech.run(audio, call_id=path.stem)
    t1 = time.perf_counter()
    analyzer.transcript(result.call)
    understanding = time.perf_counter() - t1
    stages = {"decode": decode, **result.timings, "understanding": understanding}
    total = sum(stages.values())
    return {
        "audio_seconds": audio.duration,
        "load_seconds": load_seconds,
        "stage_seconds": stages,
        "total_seconds": total,
        "realtime_x": audio.duration / total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "diarizer": speech.diarizer.name,
        "asr": speech.transcriber.name,
        "turns": len(result.call.turns),
    }


def run_speech_bench(
    minutes: Sequence[float], out: Path | None, console: Console, env: dict[str, str] | None = None
) -> list[dict]:
    """Measure each length in a fresh process (``env`` added to its environment) and print a table."""
    work = get_settings().home / "bench"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in minutes:
        path = long_recording(m, work)
        proc = subprocess.run(
            [sys.executable, "-m", "evaluation.bench_speech", str(path)],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ.copy() | (env or {}),
        )
        if proc.returncode != 0:
            console.print(f"[red]{m:g} min failed:[/] {proc.stderr.strip()[-2000:]}")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["minutes"] = m
        rows.append(row)
    table = Table(title="speech pipeline (CPU, 2 cores): × real time per stage", title_justify="left")
    for col in ("call", *STAGES, "end to end", "peak RSS", "model load"):
        table.add_column(col, justify="right")
    for r in rows:
        s = r["stage_seconds"]
        table.add_row(
            f"{r['minutes']:g} min",
            *(f"{r['audio_seconds'] / s[k]:.0f}×" if s.get(k) else "—" for k in STAGES),
            f"[bold]{r['realtime_x']:.2f}×[/]",
            f"{r['peak_rss_mb']:.0f} MB",
            f"{r['load_seconds']:.0f} s",
        )
    console.print(table)
    if rows:
        console.print(f"diarizer {rows[0]['diarizer']}, ASR {rows[0]['asr']}")
    if out:
        meta = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**meta, "runs": rows}, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":  # the per-length worker process
    print(json.dumps(measure(Path(sys.argv[1]))))
