"""A bounded load test on a running API: open-loop arrivals at a fixed rate, latency percentiles,
status counts, and for recordings every accepted job followed to its end (none may be lost)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from callqa.dataset import read_calls
from callqa.errors import BadInput


@dataclass
class LoadReport:
    kind: str
    target_rate: float
    seconds: float
    sent: int
    achieved_rate: float
    statuses: dict[str, int]
    server_errors: int
    transport_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    accepted: int = 0
    done: int = 0
    failed: int = 0
    lost: int = 0
    drain_seconds: float = 0.0
    job_p50_s: float = 0.0
    job_p99_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _percentiles(values: list[float]) -> tuple[float, float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0, 0.0
    a = np.asarray(values) * 1000
    return (round(float(np.percentile(a, 50)), 1), round(float(np.percentile(a, 90)), 1),
            round(float(np.percentile(a, 99)), 1), round(float(a.max()), 1))  # fmt: skip


async def _open_loop(client: httpx.AsyncClient, rate: float, count: int, make_request) -> tuple[list, float]:
    """``count`` requests started at ``rate`` per second whatever the answers' speed (no coordinated omission)."""
    outcomes: list[tuple[int | None, float, object]] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        try:
            response = await make_request(client, i)
            outcomes.append((response.status_code, time.perf_counter() - started, response))
        except httpx.HTTPError as exc:
            outcomes.append((None, time.perf_counter() - started, exc))

    begin = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return outcomes, time.perf_counter() - begin


def _report(kind: str, rate: float, outcomes: list, seconds: float) -> LoadReport:
    statuses = Counter(str(s) if s is not None else "transport-error" for s, _, _ in outcomes)
    p50, p90, p99, worst = _percentiles([d for s, d, _ in outcomes if s is not None])
    return LoadReport(
        kind=kind,
        target_rate=rate,
        seconds=round(seconds, 2),
        sent=len(outcomes),
        achieved_rate=round(len(outcomes) / seconds, 2) if seconds else 0.0,
        statuses=dict(statuses),
        server_errors=sum(1 for s, _, _ in outcomes if s is not None and s >= 500),
        transport_errors=statuses.get("transport-error", 0),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=worst,
        failures=[f"{s}: {getattr(r, 'text', r)!s:.200}" for s, _, r in outcomes if s is None or s >= 400][:5],
    )


async def transcripts_load(
    client: httpx.AsyncClient, transcripts: list[dict], rate: float, seconds: float
) -> LoadReport:
    """POST /v1/transcripts at ``rate`` for ``seconds``."""

    async def request(c: httpx.AsyncClient, i: int) -> httpx.Response:
        body = dict(transcripts[i % len(transcripts)])
        body["call_id"] = f"{body['call_id']}-{i}"
        return await c.post("/v1/transcripts", json=body)

    outcomes, took = await _open_loop(client, rate, max(1, int(rate * seconds)), request)
    return _report("transcripts", rate, outcomes, took)


async def recordings_load(
    client: httpx.AsyncClient, recordings: list[bytes], rate: float, count: int, run_id: str, timeout: float = 3600
) -> LoadReport:
    """POST /v1/calls ``count`` times at ``rate``, then follow every accepted job until it ends."""

    async def request(c: httpx.AsyncClient, i: int) -> httpx.Response:
        files = {"audio": (f"load-{i}.wav", recordings[i % len(recordings)], "audio/wav")}
        return await c.post("/v1/calls", data={"call_id": f"load-{run_id}-{i}"}, files=files)

    outcomes, took = await _open_loop(client, rate, count, request)
    report = _report("recordings", rate, outcomes, took)
    accepted = [r.json()["call_id"] for s, _, r in outcomes if s in (200, 202)]
    report.accepted = len(accepted)
    pending, durations = set(accepted), []
    begin = time.perf_counter()
    while pending and time.perf_counter() - begin < timeout:
        for call_id in list(pending):
            r = await client.get(f"/v1/calls/{call_id}")
            if r.status_code == 404:
                continue  # accepted but unknown: counted as lost if it never appears
            job = r.json()
            if job["status"] in ("done", "failed"):
                pending.discard(call_id)
                report.done += job["status"] == "done"
                report.failed += job["status"] == "failed"
                if job["status"] == "failed":
                    report.failures.append(f"{call_id}: {job['error']}")
                if job["finished_at"]:
                    from datetime import datetime

                    ended = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
                    durations.append(ended.total_seconds())
        await asyncio.sleep(0.5)
    report.lost = len(pending)
    report.drain_seconds = round(time.perf_counter() - begin, 1)
    if durations:
        report.job_p50_s = round(float(np.percentile(durations, 50)), 2)
        report.job_p99_s = round(float(np.percentile(durations, 99)), 2)
    return report


def load_transcripts(path: Path) -> list[dict]:
    calls = read_calls(path)
    return [json.loads(c.model_dump_json(exclude_none=True)) for c in calls]


def load_recordings(paths: list[Path], seconds: float | None) -> list[bytes]:
    """The recordings' bytes; with ``seconds``, each made exactly that long (repeated, then cut; as WAV)."""
    import soundfile as sf

    out = []
    for p in paths:
        if seconds is None:
            out.append(p.read_bytes())
            continue
        try:
            data, rate = sf.read(p, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BadInput(f"{p}: not a readable recording ({exc})") from exc
        need = int(seconds * rate)
        data = np.concatenate([data] * (need // len(data) + 1))[:need]
        buf = io.BytesIO()
        sf.write(buf, data[: int(seconds * rate)], rate, format="WAV")
        out.append(buf.getvalue())
    return out


def run(url: str, key: str | None, coro_factory) -> LoadReport:
    async def main() -> LoadReport:
        headers = {"X-API-Key": key} if key else {}
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client:
            return await coro_factory(client)

    return asyncio.run(main())
