"""The REST API: recordings in (queued, durable), transcripts in (answered at once), results out.

Every route but ``/healthz`` and ``/readyz`` wants an ``X-API-Key`` from ``CALLQA_API_KEYS``
(compared in constant time). Bodies over the limits get 413 before they are read in full; every
``CallQAError`` becomes its HTTP status with the reason in ``detail``.
"""

import asyncio
import hashlib
import logging
import re
import secrets
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from callqa.errors import BadInput, CallQAError, Conflict, NotFound
from callqa.schemas import Call, CallResult, Questionnaire
from callqa.settings import Settings
from callqa.storage import ObjectStore, open_store
from serving.backend import Backend
from serving.engine import questionnaire_key
from serving.jobs import Job, JobStatus, JobStore
from serving.metrics import ApiMetrics
from serving.worker import JobRunner

log = logging.getLogger(__name__)

CALL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
AUDIO_TYPES = ("audio/", "video/ogg", "application/ogg", "application/octet-stream")
AUDIO_SUFFIX = {"wav": ".wav", "wave": ".wav", "x-wav": ".wav", "mpeg": ".mp3", "mp3": ".mp3", "ogg": ".ogg",
                "opus": ".ogg", "flac": ".flac", "x-flac": ".flac"}  # fmt: skip
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
UPLOAD_PATH = "/v1/calls"
MB = 1024 * 1024


class JobView(BaseModel):
    """A recording's job: where it is, and its result once done."""

    call_id: str
    status: JobStatus
    questionnaire: str
    attempts: int
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    result: CallResult | None = None


class QuestionnaireInfo(BaseModel):
    name: str
    questions: int
    source: str = Field(description="default (the server's file) or stored (PUT through the API)")
    required: list[str]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str]
    queue: dict[str, int]


class ErrorBody(BaseModel):
    detail: str
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "missing or wrong X-API-Key"),
        (404, "unknown call id or questionnaire"),
        (413, "body over the size limit"),
        (422, "input the service cannot use, with the reason"),
    )
}


class _TooLargeError(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit, by Content-Length or while streaming."""

    def __init__(self, app, upload_bytes: int, json_bytes: int) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.json_bytes = json_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"] == UPLOAD_PATH else self.json_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_error(send, 400, "BadInput", "Content-Length is not a number")
                return
            if size > limit:
                await _send_error(send, 413, "TooLarge", f"body of {size} bytes is over the {limit}-byte limit")
                return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLargeError
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLargeError:
            if not started:
                await _send_error(send, 413, "TooLarge", f"body is over the {limit}-byte limit")


async def _send_error(send, status: int, error: str, detail: str) -> None:
    body = ErrorBody(detail=detail, error=error).model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def key_ok(given: str | bytes | None, keys: list[bytes]) -> bool:
    """Whether ``given`` is one of ``keys`` (every key compared in constant time); no keys: open."""
    if not keys:
        return True
    raw = given.encode() if isinstance(given, str) else (given or b"")
    return any([secrets.compare_digest(raw, k) for k in keys])  # a list: every key is compared, match or not


class ApiKeyGate:
    """ASGI middleware: 401 before anything of a request without a valid ``X-API-Key`` is read."""

    def __init__(self, app, keys: list[bytes]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope.get("headers") or []).get(b"x-api-key")
            if not key_ok(given, self.keys):
                await _send_error(send, 401, "HTTP 401", "missing or wrong X-API-Key")
                return
        await self.app(scope, receive, send)


class RequestMetrics:
    """ASGI middleware: counts and times each request under its route template."""

    def __init__(self, app, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracked_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(time.perf_counter() - started)


class Service:
    """The API's state: settings, stores, backend, workers."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        default: Questionnaire,
        jobs: JobStore | None = None,
        objects: ObjectStore | None = None,
        run_workers: bool = True,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.default = default
        self.jobs = jobs or JobStore(settings.serving_db)
        self.objects = objects or open_store(settings)
        self.metrics = ApiMetrics()
        self.runner = (
            JobRunner(
                self.jobs,
                self.objects,
                backend,
                workers=settings.serving.workers,
                max_attempts=settings.serving.max_attempts,
                metrics=self.metrics,
            )
            if run_workers
            else None
        )
        self.warm_error: str | None = None
        self.pending = 0

    def questionnaire(self, name: str | None) -> Questionnaire:
        if name is None or name == self.default.name:
            return self.jobs.questionnaire(self.default.name) or self.default
        found = self.jobs.questionnaire(name)
        if found is None:
            raise NotFound(f"no questionnaire {name!r}; GET /v1/questionnaires lists them")
        return found

    def warm_up(self) -> None:
        try:
            self.backend.warm_up()
        except Exception as exc:  # /readyz reports it; the process stays up for /healthz and a fix
            log.exception("models failed to load")
            self.warm_error = f"{type(exc).__name__}: {exc}"

    def view(self, job: Job) -> JobView:
        result = None
        if job.status == JobStatus.done and job.result_key:
            result = CallResult.model_validate_json(self.objects.get_bytes(job.result_key))
        return JobView(
            call_id=job.call_id,
            status=job.status,
            questionnaire=job.questionnaire.name,
            attempts=job.attempts,
            error=job.error,
            created_at=datetime.fromtimestamp(job.created_at).astimezone(),
            updated_at=datetime.fromtimestamp(job.updated_at).astimezone(),
            finished_at=datetime.fromtimestamp(job.finished_at).astimezone() if job.finished_at else None,
            result=result,
        )


def _suffix(upload: UploadFile) -> str:
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    sub = ctype.split("/", 1)[-1]
    if sub in AUDIO_SUFFIX:
        return AUDIO_SUFFIX[sub]
    name_suffix = Path(upload.filename or "").suffix.lower()
    return name_suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", name_suffix) else ".bin"


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (the local server and the Ray Serve ingress both use it)."""
    settings = service.settings
    cfg = settings.serving
    keys = [k.encode() for k in settings.api_keys]
    if not keys:
        log.warning("CALLQA_API_KEYS is empty: the API accepts requests without a key")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        threading.Thread(target=service.warm_up, name="callqa-warm-up", daemon=True).start()
        if service.runner is not None:
            service.runner.start()
        yield
        if service.runner is not None:
            await anyio.to_thread.run_sync(service.runner.stop)
        close = getattr(service.backend, "close", None)
        if close is not None:
            close()

    app = FastAPI(
        title="callqa",
        version="1.0",
        summary="Sales-call question answering and quality assurance",
        description="Send recordings (queued, analysed in the background) or transcripts (answered at once); "
        "get the answers to the questionnaire, the manager's errors, the call type and the call metrics.",
        lifespan=lifespan,
    )
    app.state.service = service
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="one of CALLQA_API_KEYS")

    def require_key(key: Annotated[str | None, Depends(api_key)]) -> None:
        if not key_ok(key, keys):  # the gate already refused these; this documents the scheme in OpenAPI
            raise HTTPException(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})

    auth = [Depends(require_key)]

    @app.exception_handler(CallQAError)
    async def _callqa_error(_request: Request, exc: CallQAError) -> JSONResponse:
        body = ErrorBody(detail=str(exc), error=type(exc).__name__).model_dump()
        return JSONResponse(body, status_code=exc.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = ErrorBody(detail=str(exc.detail), error=f"HTTP {exc.status_code}").model_dump()
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["health"], responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        """200 once the models are loaded; 503 before (or with the load error)."""
        ready = service.backend.ready()
        body = Readiness(ready=ready, models=service.backend.models(), queue=service.jobs.counts())
        content = body.model_dump()
        if service.warm_error:
            content["error"] = service.warm_error
        return JSONResponse(content, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=auth, tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text: requests, latencies, jobs by status, model versions."""
        data = service.metrics.render(service.jobs.counts, service.backend.models())
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post(
        "/v1/calls",
        status_code=202,
        response_model=JobView,
        dependencies=auth,
        tags=["calls"],
        responses={
            **ERRORS,
            200: {"model": JobView, "description": "this call id was already submitted"},
            409: {"model": ErrorBody, "description": "call id already used for other audio"},
            415: {"model": ErrorBody, "description": "not an audio upload"},
        },
    )
    async def submit_call(
        audio: Annotated[UploadFile, File(description="the recording: wav, mp3, ogg/opus, flac; mono or stereo")],
        call_id: Annotated[str | None, Form(pattern=CALL_ID, description="default: from the audio's hash")] = None,
        manager_id: Annotated[str | None, Form(max_length=128)] = None,
        started_at: Annotated[datetime | None, Form(description="ISO date-time the call started")] = None,
        stereo_map: Annotated[
            str | None, Form(max_length=32, description="which channel is whom, e.g. agent=0,client=1")
        ] = None,
        questionnaire: Annotated[str | None, Form(max_length=128)] = None,
    ) -> JSONResponse:
        """Queue a recording; 202 with the job once it is on record (200 with the same job when resent)."""
        from callqa.cli import parse_stereo_map
        from callqa.speech.audio import load_audio

        ctype = (audio.content_type or "application/octet-stream").lower()
        if not ctype.startswith(AUDIO_TYPES):
            raise HTTPException(415, f"audio must be an audio file, not {ctype}")
        q = service.questionnaire(questionnaire)
        try:
            agent_channel = parse_stereo_map(stereo_map)
        except BadInput as exc:
            raise BadInput(str(exc).replace("--stereo-map", "stereo_map")) from exc
        data = await audio.read()
        if not data:
            raise BadInput("audio: the file is empty")
        digest = hashlib.sha256(data).hexdigest()
        call_id = call_id or f"call-{digest[:20]}"
        try:
            existing = service.jobs.get(call_id)
        except NotFound:
            existing = None
        if existing is not None:
            if existing.audio_sha256 != digest:
                raise Conflict(f"call {call_id!r} was already submitted with different audio")
            return JSONResponse(service.view(existing).model_dump(mode="json"), status_code=200)
        sp = settings.speech
        await anyio.to_thread.run_sync(
            lambda: load_audio(data, max_seconds=sp.max_audio_seconds, silence_dbfs=sp.silence_dbfs, name="audio")
        )
        key = f"audio/{call_id}/{digest[:16]}{_suffix(audio)}"
        await anyio.to_thread.run_sync(service.objects.put_bytes, key, data, ctype)
        meta = {"manager_id": manager_id, "started_at": started_at.isoformat() if started_at else None,
                "agent_channel": agent_channel, "filename": audio.filename}  # fmt: skip
        job, created = service.jobs.submit(call_id, key, digest, meta, q)
        if service.runner is not None:
            service.runner.wake()
        return JSONResponse(
            service.view(job).model_dump(mode="json"),
            status_code=202 if created else 200,
            headers={"Location": f"/v1/calls/{call_id}"},
        )

    @app.get("/v1/calls/{call_id}", response_model=JobView, dependencies=auth, tags=["calls"], responses=ERRORS)
    async def get_call(call_id: Annotated[str, PathParam(pattern=CALL_ID)]) -> JobView:
        """A recording's status; the CallResult once it is done."""
        job = service.jobs.get(call_id)
        return await anyio.to_thread.run_sync(service.view, job)

    @app.post(
        "/v1/transcripts",
        response_model=CallResult,
        dependencies=auth,
        tags=["transcripts"],
        responses={
            **ERRORS,
            429: {"model": ErrorBody, "description": "too many transcripts in analysis; retry after Retry-After"},
            504: {"model": ErrorBody, "description": "took longer than the request limit"},
        },
    )
    async def analyze_transcript(
        call: Call, questionnaire: Annotated[str | None, Query(max_length=128)] = None
    ) -> CallResult:
        """Analyse a ready transcript (turns with speakers, optionally timed) and answer at once."""
        if len(call.turns) > cfg.max_turns:
            raise BadInput(f"turns: {len(call.turns)} turns, the limit is {cfg.max_turns}")
        q = service.questionnaire(questionnaire)
        if not service.backend.ready():
            raise HTTPException(503, "models are still loading; see /readyz", headers={"Retry-After": "5"})
        if service.pending >= cfg.max_pending:
            raise HTTPException(
                429, f"busy: {service.pending} transcripts in analysis; retry shortly", headers={"Retry-After": "1"}
            )
        service.pending += 1  # one event loop: no lock needed
        try:
            return await asyncio.wait_for(service.backend.transcript(call, q), cfg.request_timeout)
        except TimeoutError as exc:
            raise HTTPException(504, f"analysis took longer than {cfg.request_timeout:g} s") from exc
        finally:
            service.pending -= 1

    @app.get("/v1/questionnaires", response_model=list[QuestionnaireInfo], dependencies=auth, tags=["questionnaires"])
    async def list_questionnaires() -> list[QuestionnaireInfo]:
        """The default questionnaire and those stored through the API."""
        stored = {q.name: q for q in service.jobs.questionnaires()}
        every = {service.default.name: service.default, **stored}
        return [
            QuestionnaireInfo(
                name=name,
                questions=len(q.questions),
                source="stored" if name in stored else "default",
                required=[x.id for x in q.questions if x.required],
            )
            for name, q in sorted(every.items())
        ]

    @app.get(
        "/v1/questionnaires/{name}",
        response_model=Questionnaire,
        dependencies=auth,
        tags=["questionnaires"],
        responses=ERRORS,
    )
    async def get_questionnaire(name: Annotated[str, PathParam(max_length=128)]) -> Questionnaire:
        return service.questionnaire(name)

    @app.put(
        "/v1/questionnaires/{name}",
        response_model=Questionnaire,
        dependencies=auth,
        tags=["questionnaires"],
        responses={**ERRORS, 201: {"model": Questionnaire, "description": "stored a new questionnaire"}},
    )
    async def put_questionnaire(
        name: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")], body: Questionnaire
    ) -> JSONResponse:
        """Store a questionnaire (new questions are answered from the next call on)."""
        if body.name != name:
            raise BadInput(f"name: the body names {body.name!r}, the path {name!r}")
        from callqa.understanding.answers import ZeroShotAnswerExtractor

        try:  # the questions must make a working extractor before they are stored
            await anyio.to_thread.run_sync(ZeroShotAnswerExtractor, body)
        except CallQAError:
            raise
        except Exception as exc:
            raise BadInput(f"questions: cannot build an extractor from them ({exc})") from exc
        created = service.jobs.put_questionnaire(body)
        log.info("questionnaire stored", extra={"name": name, "key": questionnaire_key(body)})
        return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)

    app.add_middleware(BodyLimit, upload_bytes=int(cfg.max_upload_mb * MB), json_bytes=int(cfg.max_json_mb * MB))
    app.add_middleware(ApiKeyGate, keys=keys)  # before the limit: strangers get 401, not 413
    app.add_middleware(RequestMetrics, metrics=service.metrics)  # outermost: 413s are counted too
    return app
