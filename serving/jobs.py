"""Durable jobs and questionnaires in SQLite: a recording is on record before the API says 202.

A job is one recording: ``queued`` → ``running`` → ``done`` (result written once to the object
store) or ``failed`` (with the reason; its audio stays in the store). Claiming is one
``BEGIN IMMEDIATE`` transaction, so several workers (threads or processes on one disk) never take
the same job; jobs found ``running`` when a process starts were cut off by a crash and are queued
again. The database runs in WAL mode with ``synchronous=FULL``: an acknowledged job survives a
power cut, not only a crash.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from callqa.errors import Conflict, NotFound
from callqa.schemas import Questionnaire

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    call_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    audio_key TEXT NOT NULL,
    audio_sha256 TEXT NOT NULL,
    meta TEXT NOT NULL,
    questionnaire TEXT NOT NULL,
    result_key TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS questionnaires (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


@dataclass
class Job:
    call_id: str
    status: JobStatus
    audio_key: str
    audio_sha256: str
    meta: dict
    questionnaire: Questionnaire
    result_key: str | None
    error: str | None
    attempts: int
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            call_id=row["call_id"],
            status=JobStatus(row["status"]),
            audio_key=row["audio_key"],
            audio_sha256=row["audio_sha256"],
            meta=json.loads(row["meta"]),
            questionnaire=Questionnaire.model_validate_json(row["questionnaire"]),
            result_key=row["result_key"],
            error=row["error"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )


class JobStore:
    """Jobs and stored questionnaires in one SQLite file; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- jobs ---------------------------------------------------------------------------------
    def submit(
        self, call_id: str, audio_key: str, audio_sha256: str, meta: dict, questionnaire: Questionnaire
    ) -> tuple[Job, bool]:
        """Record a job (committed on return); the existing one and False when the call id is known.

        The same call id with other audio is a ``Conflict``: a client retrying an upload must get
        its job back, a client reusing an id for another call must be told."""
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE call_id = ?", (call_id,)).fetchone()
            if row is not None:
                job = Job.from_row(row)
                if job.audio_sha256 != audio_sha256:
                    raise Conflict(f"call {call_id!r} was already submitted with different audio")
                return job, False
            db.execute(
                "INSERT INTO jobs (call_id, status, audio_key, audio_sha256, meta, questionnaire, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    call_id,
                    JobStatus.queued,
                    audio_key,
                    audio_sha256,
                    json.dumps(meta, default=str),
                    questionnaire.model_dump_json(),
                    now,
                    now,
                ),
            )
        return self.get(call_id), True

    def get(self, call_id: str) -> Job:
        row = self._db().execute("SELECT * FROM jobs WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise NotFound(f"no call {call_id!r}")
        return Job.from_row(row)

    def claim(self) -> Job | None:
        """The oldest queued job, now ``running`` with one more attempt; None when the queue is empty."""
        with self._tx() as db:
            row = db.execute(
                "SELECT call_id FROM jobs WHERE status = ? ORDER BY created_at LIMIT 1", (JobStatus.queued,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, attempts = attempts + 1, updated_at = ? WHERE call_id = ?",
                (JobStatus.running, time.time(), row["call_id"]),
            )
        return self.get(row["call_id"])

    def finish(self, call_id: str, result_key: str) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result_key = ?, error = NULL, updated_at = ?, finished_at = ? "
                "WHERE call_id = ?",
                (JobStatus.done, result_key, now, now, call_id),
            )

    def fail(self, call_id: str, error: str, *, retry: bool) -> JobStatus:
        """Record a failed attempt: queued again when ``retry``, else failed for good."""
        status = JobStatus.queued if retry else JobStatus.failed
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE call_id = ?",
                (status, error, now, None if retry else now, call_id),
            )
        return status

    def recover(self) -> int:
        """Queue again the jobs a crashed process left ``running``; how many."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status = ?, updated_at = ? WHERE status = ?",
                (JobStatus.queued, time.time(), JobStatus.running),
            )
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        rows = self._db().execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        return {s.value: 0 for s in JobStatus} | {r["status"]: r["n"] for r in rows}

    # --- questionnaires ----------------------------------------------------------------------
    def put_questionnaire(self, questionnaire: Questionnaire) -> bool:
        """Store (or replace) a questionnaire by name; True when it is new."""
        with self._tx() as db:
            existed = db.execute("SELECT 1 FROM questionnaires WHERE name = ?", (questionnaire.name,)).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO questionnaires (name, body, updated_at) VALUES (?, ?, ?)",
                (questionnaire.name, questionnaire.model_dump_json(), time.time()),
            )
        return existed is None

    def questionnaire(self, name: str) -> Questionnaire | None:
        row = self._db().execute("SELECT body FROM questionnaires WHERE name = ?", (name,)).fetchone()
        return None if row is None else Questionnaire.model_validate_json(row["body"])

    def questionnaires(self) -> list[Questionnaire]:
        rows = self._db().execute("SELECT body FROM questionnaires ORDER BY name").fetchall()
        return [Questionnaire.model_validate_json(r["body"]) for r in rows]
