"""The load test itself: open-loop arrivals, statuses and latencies counted, against the real app."""

from __future__ import annotations

import asyncio

import httpx

from callqa.settings import Settings
from serving.loadtest import transcripts_load
from serving.local import local_app


def test_transcript_load_counts_every_request(tmp_path, supplier_call):
    settings = Settings(home=tmp_path, api_keys=["k"], serving={"preload_speech": False, "reload_seconds": 0})
    app = local_app(settings, run_workers=False)
    app.state.service.warm_up()
    good = {"call_id": "a", "turns": [t.model_dump(exclude_none=True) for t in supplier_call.turns]}
    bad = {"call_id": "b", "turns": []}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"X-API-Key": "k"}) as c:
            return await transcripts_load(c, [good, good, bad], rate=20, seconds=1.5)

    report = asyncio.run(main())
    assert report.sent == 30 and report.server_errors == 0 and report.transport_errors == 0
    assert report.statuses == {"200": 20, "422": 10}
    assert 0 < report.p50_ms <= report.p99_ms <= report.max_ms
    assert report.failures and report.failures[0].startswith("422")
