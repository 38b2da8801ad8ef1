"""Throughput of the answer network: in process (torch) against a Triton endpoint, batches of windows.

``python -m serving.triton.bench [--url grpc://host:8001]``: without ``--url`` it exports a
production-sized span network with random weights, starts the bundled tritonserver on it and
measures both; with ``--url`` it measures a running server's ``answers`` model (e.g. on a GPU).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from callqa.understanding.span_model import SPAN_INPUTS, SPAN_OUTPUTS, SpanConfig, SpanNet
from serving.triton.client import ANSWERS_MODEL, TritonRunner
from serving.triton.export import span_example


def _stats(latencies: list[float], batch: int) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    wall = float(np.sum(latencies))
    return {
        "batch": batch,
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / wall, 1),
        "windows_per_s": round(len(latencies) * batch / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def measure(call: Callable[[], object], batch: int, n: int, warmup: int = 3) -> dict[str, float]:
    """Latency and throughput of ``n`` sequential calls."""
    for _ in range(warmup):
        call()
    latencies = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return _stats(latencies, batch)


def bench(url: str | None, batches: list[int], tokens: int, questions: int, n: int) -> list[dict]:
    """One row per (runner, batch size): ``torch`` in process, then Triton over HTTP and gRPC (or ``url``)."""
    from serving.triton.repository import add_model
    from serving.triton.server import TritonServer

    torch.manual_seed(0)
    cfg = SpanConfig()
    net = SpanNet(cfg).eval()
    rows = []
    for b in batches:
        x = span_example(batch=b, tokens=tokens, questions=questions)
        args = [torch.from_numpy(x[k]) for k in SPAN_INPUTS]
        with torch.no_grad():
            rows.append({"runner": "torch"} | measure(lambda a=args: net(*a), b, n))
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if url is None:
            add_model(Path(tmp) / "repository", ANSWERS_MODEL, net, cfg)
            server = TritonServer(Path(tmp) / "repository").start()
            urls = [server.http_url, server.grpc_url]
        else:
            urls = [url]
        try:
            for u in urls:
                runner = TritonRunner(u, ANSWERS_MODEL)
                for b in batches:
                    x = span_example(batch=b, tokens=tokens, questions=questions)
                    x["lengths"] = x["lengths"].reshape(-1, 1)
                    rows.append(
                        {"runner": u.split(":")[0]} | measure(lambda x=x, r=runner: r.infer(x, SPAN_OUTPUTS), b, n)
                    )
                runner.close()
        finally:
            if server is not None:
                server.stop()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running Triton (http://... or grpc://...); default: start the local one")
    p.add_argument("--batches", default="1,8,32", help="windows per request")
    p.add_argument("--tokens", type=int, default=SpanConfig().window, help="tokens per window")
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--n", type=int, default=30, help="requests per batch size")
    a = p.parse_args()
    for row in bench(a.url, [int(b) for b in a.batches.split(",")], a.tokens, a.questions, a.n):
        print(json.dumps({"tokens": a.tokens, "questions": a.questions} | row), flush=True)


if __name__ == "__main__":
    main()
