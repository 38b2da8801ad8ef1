"""Job workers: take queued recordings, analyse them, write each result once."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from callqa.errors import BadInput
from callqa.storage import ObjectStore
from serving.backend import Backend
from serving.engine import AudioMeta
from serving.jobs import Job, JobStatus, JobStore
from serving.metrics import ApiMetrics

log = logging.getLogger(__name__)


def result_key(call_id: str) -> str:
    return f"results/{call_id}.json"


class JobRunner:
    """``workers`` threads that drain the queue; a job cut off by a crash is queued again on start."""

    def __init__(
        self,
        jobs: JobStore,
        objects: ObjectStore,
        backend: Backend,
        *,
        workers: int = 1,
        max_attempts: int = 3,
        metrics: ApiMetrics | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.jobs = jobs
        self.objects = objects
        self.backend = backend
        self.workers = workers
        self.max_attempts = max_attempts
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self.jobs.recover()
        if recovered:
            log.warning("queued again %d recording(s) a previous process left running", recovered)
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"callqa-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.backend.ready():
                self._stop.wait(0.2)
                continue
            try:
                job = self.jobs.claim()
            except Exception:
                log.exception("could not read the job queue")
                job = None
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self.run(job)

    def run(self, job: Job) -> JobStatus:
        """Analyse one claimed job and record the outcome."""
        started = time.perf_counter()
        try:
            data = self.objects.get_bytes(job.audio_key)
            meta = AudioMeta(
                call_id=job.call_id,
                manager_id=job.meta.get("manager_id"),
                started_at=datetime.fromisoformat(job.meta["started_at"]) if job.meta.get("started_at") else None,
                agent_channel=job.meta.get("agent_channel"),
            )
            result = self.backend.audio(data, meta, job.questionnaire)
            key = result_key(job.call_id)
            if not self.objects.exists(key):  # a retry after a crash past this point keeps the first result
                self.objects.put_bytes(key, result.model_dump_json().encode(), "application/json")
            self.jobs.finish(job.call_id, key)
            status = JobStatus.done
        except BadInput as exc:  # the recording itself is unusable: retrying cannot help
            status = self.jobs.fail(job.call_id, str(exc), retry=False)
        except Exception as exc:
            retry = job.attempts < self.max_attempts
            log.exception("recording %s failed (attempt %d of %d)", job.call_id, job.attempts, self.max_attempts)
            status = self.jobs.fail(job.call_id, f"{type(exc).__name__}: {exc}", retry=retry)
        if self.metrics is not None and status != JobStatus.queued:
            self.metrics.jobs.labels(outcome=status.value).inc()
            self.metrics.job_seconds.observe(time.perf_counter() - started)
        return status
