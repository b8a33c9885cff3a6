"""The FastAPI application: routers, state, and the in-process worker's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app import api, ingest
from app.db import create_db_engine, make_sessionmaker
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Tokentrail",
        summary="Links AI spend to the pull requests it served.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's default includes the raw input, which may be a large body; keep location and message.
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return JSONResponse({"detail": details}, status_code=422)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    app.include_router(ingest.router)
    app.include_router(api.router)
    return app
