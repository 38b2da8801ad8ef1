"""Retraining trigger: Label Studio's annotation webhooks → after N new annotations, the training job.

Every event is written to SQLite (``HOME/labelling.db``) before we answer Label Studio, so the
count survives a restart. When the annotations not yet used by a job reach
``settings.labelstudio.retrain_after``, a job is queued with those events. One worker thread runs
jobs one at a time; a job that was running when the process died is queued again on start.

A job pulls a snapshot, then for each affected task (answers / errors / calltype / diarizer)
runs ``callqa train TASK`` and ``callqa gate TASK`` as subprocesses (a crash in training cannot
take the receiver down), and records their outcomes. Gate data: ``settings.labelstudio.held_out``
when set (a fixed blind set), else the snapshot is split and the model trains on one part and is
gated on the other.
"""

from __future__ import annotations

import json
import logging
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from callqa.errors import BadInput
from callqa.settings import Settings, get_settings

log = logging.getLogger(__name__)
ANNOTATION_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"}
TEXT_TASKS = ("answers", "errors", "calltype")
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    action TEXT NOT NULL,
    project_id INTEGER,
    annotations INTEGER NOT NULL,
    job_id INTEGER
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    status TEXT NOT NULL,
    annotations INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT
);
"""


class EventStore:
    """SQLite: events and jobs (one writer at a time, WAL so readers never block)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def record(self, action: str, project_id: int | None, annotations: int, threshold: int) -> int | None:
        """Store an event; returns a new job id when the pending annotations reach ``threshold``."""
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO events (received_at, action, project_id, annotations) VALUES (?, ?, ?, ?)",
                (time.time(), action, project_id, annotations),
            )
            pending = db.execute("SELECT COALESCE(SUM(annotations), 0) FROM events WHERE job_id IS NULL").fetchone()[0]
            if pending < threshold:
                return None
            cur = db.execute(
                "INSERT INTO jobs (created_at, status, annotations) VALUES (?, 'queued', ?)", (time.time(), pending)
            )
            db.execute("UPDATE events SET job_id = ? WHERE job_id IS NULL", (cur.lastrowid,))
            return cur.lastrowid

    def pending(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COALESCE(SUM(annotations), 0) FROM events WHERE job_id IS NULL").fetchone()[0]

    def requeue_interrupted(self) -> int:
        with self._lock, self._connect() as db:
            return db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'").rowcount

    def next_job(self) -> int | None:
        with self._lock, self._connect() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ?",
                (time.time(), row["id"]),
            )
            return row["id"]

    def finish(self, job_id: int, status: str, outcome: dict[str, Any]) -> None:
        with self._lock, self._connect() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, outcome = ? WHERE id = ?",
                (status, time.time(), json.dumps(outcome, ensure_ascii=False), job_id),
            )

    def jobs(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["outcome"] = json.loads(item["outcome"]) if item["outcome"] else None
            out.append(item)
        return out


def _callqa() -> list[str]:
    exe = Path(sys.executable).with_name("callqa")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "callqa.cli"]


def _run(args: list[str], log_path: Path) -> tuple[int, Any]:
    """Run a ``callqa`` command; its ``--json`` stdout parsed, its stderr appended to the job log."""
    with log_path.open("a", encoding="utf-8") as logfile:
        logfile.write(f"$ callqa {shlex.join(args)}\n")
        logfile.flush()
        proc = subprocess.run([*_callqa(), *args], stdout=subprocess.PIPE, stderr=logfile, text=True, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        return proc.returncode, proc.stdout[-2000:]


def affected_tasks(snapshot: Path, wanted: list[str]) -> list[str]:
    """The tasks whose labels the snapshot holds."""
    calls = [json.loads(line) for line in (snapshot / "calls.jsonl").read_text(encoding="utf-8").splitlines() if line]
    has = {
        "answers": any(any(v is not None for v in c.get("answers", {}).values()) for c in calls),
        "errors": any(c.get("errors") for c in calls),
        "calltype": any(c.get("call_type") for c in calls),
        "diarizer": any((snapshot / "diarization").glob("*.rttm")),
    }
    return [t for t in wanted if has.get(t)]


def run_job(job_id: int, settings: Settings) -> dict[str, Any]:
    """Pull → (split) → train each affected task → gate it. Returns the outcome per task."""
    cfg = settings.labelstudio
    work = settings.home / "labelling" / "jobs" / str(job_id)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "job.log"
    code, pulled = _run(["label", "pull", "--out", str(settings.home / "labelling" / "snapshots"), "--json"], log_path)
    if code != 0 or not isinstance(pulled, dict):
        raise RuntimeError(f"pull failed (exit {code}); see {log_path}")
    snapshot = Path(pulled["snapshot"])
    outcome: dict[str, Any] = {"snapshot": str(snapshot), "dataset_hash": pulled["dataset_hash"], "tasks": {}}
    if cfg.held_out is not None:
        train_data, gate_data = snapshot / "calls.jsonl", cfg.held_out
    else:
        code, _ = _run(["split", "--data", str(snapshot / "calls.jsonl"), "--out", str(work / "split")], log_path)
        if code != 0:
            raise RuntimeError(f"split failed (exit {code}); see {log_path}")
        train_data, gate_data = work / "split" / "tune.jsonl", work / "split" / "held_out.jsonl"
    for task in affected_tasks(snapshot, cfg.retrain_tasks):
        extra = shlex.split(cfg.train_args.get(task, ""))
        if task == "diarizer":
            args = ["train", "diarizer", "--data", str(snapshot / "diarization"), *extra, "--json"]
            code, trained = _run(args, log_path)
            outcome["tasks"][task] = {"train_exit": code, "trained": trained}
            continue
        code, trained = _run(["train", task, "--data", str(train_data), *extra, "--json"], log_path)
        entry: dict[str, Any] = {"train_exit": code, "trained": trained}
        if code == 0:
            gate_code, decision = _run(["gate", task, "--data", str(gate_data), "--json"], log_path)
            entry |= {"gate_exit": gate_code, "gate": decision}
        outcome["tasks"][task] = entry
    return outcome


class Retrainer:
    """The worker: one job at a time, in a daemon thread; interrupted jobs resume on start."""

    def __init__(self, settings: Settings | None = None, store: EventStore | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store or EventStore(self.settings.home / "labelling.db")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.busy = False

    def start(self) -> None:
        resumed = self.store.requeue_interrupted()
        if resumed:
            log.info("resuming %d interrupted training job(s)", resumed)
        self._thread = threading.Thread(target=self._loop, name="callqa-retrainer", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def notify(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            while not self._stop.is_set():
                job_id = self.store.next_job()
                if job_id is None:
                    break
                self.busy = True
                try:
                    outcome = run_job(job_id, self.settings)
                    self.store.finish(job_id, "done", outcome)
                except Exception as exc:  # a failed job is recorded, the receiver keeps running
                    log.exception("training job %s failed", job_id)
                    self.store.finish(job_id, "failed", {"error": str(exc)})
                finally:
                    self.busy = False


def count_annotations(payload: dict[str, Any]) -> int:
    if isinstance(payload.get("annotations"), list):
        return len(payload["annotations"])
    return 1 if payload.get("annotation") else 0


def create_app(settings: Settings | None = None, retrainer: Retrainer | None = None):
    """The FastAPI receiver: ``POST /labelstudio/webhook`` and ``GET /labelstudio/status``."""
    settings = settings or get_settings()
    worker = retrainer or Retrainer(settings)
    threshold = settings.labelstudio.retrain_after
    if threshold < 1:
        raise BadInput(f"labelstudio.retrain_after must be at least 1, got {threshold}")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        worker.start()
        yield
        worker.stop()

    app = FastAPI(title="callqa labelling webhooks", lifespan=lifespan)
    app.state.retrainer = worker

    @app.post("/labelstudio/webhook", status_code=200)
    async def webhook(request: Request) -> dict[str, Any]:
        try:
            payload = await request.json()
        except ValueError as exc:
            raise HTTPException(status_code=400, detail="the body is not JSON") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
            raise HTTPException(status_code=422, detail="expected a Label Studio event with an 'action'")
        action = payload["action"]
        if action not in ANNOTATION_ACTIONS:
            return {"counted": 0, "pending": worker.store.pending(), "job": None}
        project = payload.get("project") if isinstance(payload.get("project"), dict) else {}
        n = count_annotations(payload)
        job = worker.store.record(action, project.get("id"), n, threshold)
        if job is not None:
            worker.notify()
        return {"counted": n, "pending": worker.store.pending(), "job": job}

    @app.get("/labelstudio/status")
    async def status() -> dict[str, Any]:
        return {
            "pending_annotations": worker.store.pending(),
            "retrain_after": threshold,
            "busy": worker.busy,
            "jobs": worker.store.jobs(),
        }

    return app


def register_webhook(url: str, questionnaire_name: str, settings: Settings | None = None) -> dict[str, Any]:
    """Point the project's annotation events at ``url`` (idempotent)."""
    from labeling.client import Studio, project_title

    settings = settings or get_settings()
    studio = Studio(settings)
    project = studio.project(project_title(questionnaire_name, settings))
    hooks = studio.call("list webhooks", studio.sdk.webhooks.list, project=str(project.id))
    for hook in hooks:
        if hook.url == url:
            return {"id": hook.id, "url": url, "project": project.id, "created": False}
    hook = studio.call(
        "create webhook",
        studio.sdk.webhooks.create,
        url=url,
        project=project.id,
        send_payload=True,
        send_for_all_actions=False,
        actions=sorted(ANNOTATION_ACTIONS),
    )
    return {"id": hook.id, "url": url, "project": project.id, "created": True}
