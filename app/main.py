"""The FastAPI application: routers, state, and the in-process worker's lifespan."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app import (
    api,
    ci_api,
    csv_api,
    dashboard,
    github_setup,
    ingest,
    jobs,
    metrics,
    outage,
    pulls_api,
    report_api,
    webhooks,
)
from app.app_mode import AppMode, publisher_for
from app.body_guard import BodyGuard
from app.db import create_db_engine, make_sessionmaker
from app.election import RETRY_SECONDS, WorkerElection
from app.heartbeat import Heartbeat
from app.oidc import JwksCache
from app.page_headers import SecurityHeaders
from app.settings import Settings, get_settings
from app.worker import Worker

log = logging.getLogger("tokentrail")
_STATUS_CONTENT = {
    "application/json": {
        "schema": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "unavailable"]}}}
    }
}


def build_worker(settings: Settings, factory: Any) -> Worker:
    heartbeat = Heartbeat(settings.worker_heartbeat_path)
    return Worker(factory=factory, settings=settings, publisher=publisher_for(settings), heartbeat=heartbeat)


def run_elected(worker: Worker, election: WorkerElection, stop: threading.Event, wake: threading.Event) -> None:
    """Run the worker once this process wins the election (app.election); until then, stand again every few
    seconds, so that another API process's worker that stops is replaced."""
    while not stop.is_set():
        try:
            if election.try_lead():
                log.info("this process runs the worker")
                worker.run_forever(stop, wake)
                return
        except Exception:  # the database is away: stand again later
            log.exception("worker election failed")
        stop.wait(RETRY_SECONDS)


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    worker = build_worker(settings, factory)
    stop, wake = threading.Event(), threading.Event()
    mode = AppMode(worker=worker, factory=factory)
    in_process = settings.run_worker if run_worker is None else run_worker
    election = WorkerElection(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mode.start(stop)  # an App created through /github/setup, here or by another process (app.app_mode)
        thread = None
        if in_process:
            thread = threading.Thread(
                target=run_elected, args=(worker, election, stop, wake), name="tokentrail-worker", daemon=True
            )
            thread.start()
        yield
        stop.set()
        wake.set()
        if thread is not None:
            thread.join(timeout=30)
        election.resign()
        engine.dispose()

    app = FastAPI(
        title="Tokentrail",
        summary="Links AI spend to the pull requests it served.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = factory
    app.state.worker = worker
    app.state.wake_worker = wake.set
    app.state.app_mode = mode
    mode.attach(app.state)
    app.state.jwks = JwksCache(str(settings.oidc_jwks_url))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        if request.url.path.startswith("/dashboard/"):  # a browser's page: an HTML answer (app.dashboard)
            return dashboard.malformed_url_page(request, [str(e.get("loc", ("",))[0]) for e in error.errors()])
        # FastAPI's default includes the raw input, which may be a large body; keep location, message and type
        # (the three fields the schema's ValidationError requires).
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
        ]
        return JSONResponse({"detail": details}, status_code=422)

    @app.middleware("http")
    async def _refuse_nul(request: Request, call_next: Any) -> Any:
        # No parameter holds a NUL character, and PostgreSQL text cannot: refuse it before it reaches a query.
        if "\x00" in request.scope.get("path", "") or b"%00" in request.scope.get("query_string", b""):
            return JSONResponse({"detail": "the URL contains a NUL character"}, status_code=400)
        return await call_next(request)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")  # the route's template keeps label values few
        metrics.REQUEST_SECONDS.observe(
            time.perf_counter() - started, request.method, template, str(response.status_code)
        )
        return response

    # Outermost of our middleware, so every route's body is capped and timed (app/body_guard.py).
    app.add_middleware(BodyGuard, ingest_bytes=settings.max_body_bytes, timeout_seconds=settings.body_timeout_seconds)

    outage.install(app)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness: the service and its database answer",
        responses={503: {"description": "The database does not answer", "content": _STATUS_CONTENT}},
    )
    def healthz() -> JSONResponse:
        if not outage.database_answers(engine):
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        with factory() as session:
            job_counts = jobs.counts_by_state(session)
        gauges = metrics.render_gauge("tokentrail_jobs", "Jobs in the outbox, by state", "state", job_counts)
        return PlainTextResponse(metrics.render_all(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")

    # Outermost, so that every answer carries the headers, errors of the other middlewares included.
    app.add_middleware(SecurityHeaders)
    app.include_router(ingest.router)
    app.include_router(ci_api.router)
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(pulls_api.router)
    app.include_router(report_api.router)
    app.include_router(csv_api.router)
    app.include_router(dashboard.router)
    app.include_router(github_setup.router)
    return app
