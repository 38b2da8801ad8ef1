"""Prometheus metrics of the API: requests, latencies, queue depth, jobs, model versions."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) keep their own counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "callqa_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "callqa_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge("callqa_jobs", "Recordings by job status", ["status"], registry=self.registry)
        self.jobs = Counter(
            "callqa_jobs_finished", "Recordings finished by outcome", ["outcome"], registry=self.registry
        )
        self.job_seconds = Histogram(
            "callqa_job_seconds", "Seconds to analyse one recording", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.models = Gauge(
            "callqa_model_info", "The model serving each task (value 1)", ["task", "model"], registry=self.registry
        )

    def render(self, counts: Callable[[], dict[str, int]], models: dict[str, str]) -> bytes:
        """The exposition text, with the queue and model gauges read now."""
        for status, n in counts().items():
            self.queue.labels(status=status).set(n)
        self.models.clear()
        for task, model in models.items():
            self.models.labels(task=task, model=model).set(1)
        return generate_latest(self.registry)
