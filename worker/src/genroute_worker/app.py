"""The HTTP layer: the OpenAI-style ``/v1/videos`` routes, ``/health`` and ``/metrics``.

Why these choices: genroute, the OpenAI client, vLLM-Omni and SGLang clients send create
bodies as JSON, urlencoded forms or multipart forms, so all three are read into one flat
mapping and validated the same way. Bodies are read with a byte cap before any parsing.
Every error is ``{"error": {"code", "message"}}``; no handler waits for a render (the job
manager's lock is only held for record updates), so polls and /health stay fast while the
GPU is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from genroute_worker.config import Settings
from genroute_worker.jobs import COMPLETED, QUEUED, IN_PROGRESS, JobManager, QueueFull
from genroute_worker.metrics import CONTENT_TYPE_LATEST, Metrics
from genroute_worker.pipeline import Renderer
from genroute_worker.requests import ApiError, parse_create

log = logging.getLogger("genroute_worker.app")

#: The worker only checks a bearer key when this variable is set (never a flag: keys stay
#: out of process listings and shell history).
API_KEY_ENV = "GENROUTE_WORKER_API_KEY"


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"the body is {declared} bytes; send at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is over {limit} bytes; send at most {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_fields(request: Request, limit: int) -> dict[str, Any]:
    """The create body as one flat mapping, whatever its content type."""
    raw = await _read_capped(request, limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        replayed = Request(request.scope, replay)
        try:
            form = await replayed.form(max_files=4, max_fields=100)
        except Exception as e:  # noqa: BLE001 - a malformed form is the client's error
            raise ApiError(400, "invalid_request", f"the multipart body cannot be read: {e}") from None
        out: dict[str, Any] = {}
        for key, value in form.multi_items():
            # A file where text is expected is refused by validation, naming the field.
            out[key] = value
        await form.close()
        return out
    if ctype == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_request", "the form body is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        if not raw.strip():
            raise ApiError(400, "invalid_request", "the body is empty; send JSON with at least `prompt`")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "invalid_request", f"the body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "the JSON body must be an object with at least `prompt`")
        return data
    raise ApiError(
        415,
        "unsupported_media_type",
        f"content type {ctype!r} is not read; send application/json, "
        "application/x-www-form-urlencoded or multipart/form-data",
    )


def create_app(settings: Settings, renderer: Renderer) -> FastAPI:
    """Builds the app around an already loaded renderer (the real one or the bench's fake)."""
    metrics = Metrics()
    jobs = JobManager(
        renderer,
        metrics,
        queue_size=settings.queue_size,
        output_dir=settings.output_dir,
        retention_seconds=settings.retention_seconds,
        max_records=settings.max_records,
        test_faults=settings.test_faults,
    )
    api_key = os.environ.get(API_KEY_ENV) or None
    info = renderer.info

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.start()

        async def sweeper() -> None:
            every = max(0.05, min(60.0, settings.retention_seconds / 4))
            while True:
                await asyncio.sleep(every)
                jobs.sweep()

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.to_thread(jobs.stop)

    app = FastAPI(title="genroute-worker", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.jobs = jobs
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def api_error(_r: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error(e.status_code, code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_r: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return error(400, "invalid_request", f"`{where}` {first.get('msg', 'is invalid')}")

    @app.exception_handler(Exception)
    async def unexpected(_r: Request, e: Exception) -> JSONResponse:
        log.error("unexpected %s in a handler: %s", type(e).__name__, e)
        return error(500, "internal_error", "the worker hit an unexpected error; see its log")

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Response:
        if api_key is not None and request.url.path.startswith("/v1/"):
            got = request.headers.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {api_key}".encode()):
                return error(401, "unauthorized", "send `Authorization: Bearer <key>` with the worker's key")
        return await call_next(request)

    def not_found(video_id: str) -> JSONResponse:
        return error(404, "not_found", f"no video {video_id!r} (unknown, or dropped after retention)")

    def with_hint(obj: dict[str, Any], status: int = 200) -> JSONResponse:
        headers = {}
        if obj["status"] in (QUEUED, IN_PROGRESS):
            hint = jobs.poll_hint_ms(obj["id"], settings.poll_after_ms)
            if hint is not None:
                headers["openai-poll-after-ms"] = str(hint)
        return JSONResponse(obj, status_code=status, headers=headers)

    @app.post("/v1/videos")
    async def create(request: Request) -> JSONResponse:
        fields = await read_fields(request, settings.max_body_bytes)
        created = parse_create(fields, settings, info)
        try:
            obj = jobs.submit(created.request, fps=created.fps, seconds=created.seconds, model=settings.model_id)
        except QueueFull as full:
            return error(
                429,
                "queue_full",
                f"the render queue is full ({settings.queue_size} waiting); retry after {full.retry_after} s",
                headers={"Retry-After": str(full.retry_after)},
            )
        return with_hint(obj)

    @app.get("/v1/videos")
    async def list_videos(limit: int = 20, after: str | None = None, order: str = "desc") -> JSONResponse:
        if not 1 <= limit <= 100:
            raise ApiError(400, "invalid_request", f"`limit` {limit} is out of range; use 1 to 100", "limit")
        if order != "desc":
            raise ApiError(400, "invalid_request", "`order` must be desc (newest first)", "order")
        page = jobs.list(limit, after)
        if page is None:
            raise ApiError(400, "invalid_request", f"`after` {after!r} is not a known video id", "after")
        data, more = page
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            }
        )

    @app.get("/v1/videos/{video_id}")
    async def retrieve(video_id: str) -> JSONResponse:
        obj = jobs.get(video_id)
        return not_found(video_id) if obj is None else with_hint(obj)

    @app.get("/v1/videos/{video_id}/content", response_model=None)
    async def content(video_id: str, variant: str = "video") -> Response:
        status, path = jobs.content(video_id)
        if status is None:
            return not_found(video_id)
        if variant != "video":
            raise ApiError(400, "invalid_request", f"`variant` {variant!r}: only `video` is served", "variant")
        if status == COMPLETED and path is not None and path.is_file():
            return FileResponse(path, media_type="video/mp4", filename=f"{video_id}.mp4")
        if status in (QUEUED, IN_PROGRESS):
            return error(404, "not_ready", f"video {video_id} is {status}; poll GET /v1/videos/{video_id}")
        return error(422, "no_content", f"video {video_id} is {status}; it has no content")

    @app.delete("/v1/videos/{video_id}")
    async def cancel(video_id: str) -> JSONResponse:
        result = jobs.cancel(video_id)
        if result is None:
            return not_found(video_id)
        what, obj = result
        if what == "requested":
            return with_hint(obj, 202)
        if what == "finished":
            return error(
                409,
                "already_finished",
                f"video {video_id} is already {obj['status']}; there is nothing to cancel",
            )
        return JSONResponse(obj)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "model": settings.model_id,
                "pipeline": info.class_name,
                "device": info.device,
                "dtype": info.dtype,
                "queue": jobs.queued(),
                "queue_size": settings.queue_size,
                "busy": jobs.busy(),
            }
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
