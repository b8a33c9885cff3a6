"""What the service answers while its database is unreachable (DESIGN §9): 503 JSON with Retry-After on every
route that needs it, and `/healthz` reports the database. Requests that fail this way stored nothing (their
transaction never committed), so a client that retries later loses nothing."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

log = logging.getLogger("tokentrail")
RETRY_AFTER_SECONDS = 5


def is_unavailable(error: BaseException) -> bool:
    """A failure to reach or use the database at all, as opposed to a query it refused: refused connections,
    severed sessions, a SQLite file that cannot be opened or is locked, a connection pool with none to lend."""
    if isinstance(error, sa.exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)
    return isinstance(error, sa.exc.TimeoutError)


def unavailable_response() -> JSONResponse:
    return JSONResponse(
        {"detail": "the database is unreachable; retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as error:
        log.warning("health check: the database does not answer: %s", error.__class__.__name__)
        return False
    return True


def install(app: FastAPI) -> None:
    async def database_error(_request: Request, error: Exception) -> JSONResponse:
        if not is_unavailable(error):
            raise error  # a query the database refused is a bug: the server error handler reports it
        log.warning("database unreachable: %s", str(error).splitlines()[0] if str(error) else type(error).__name__)
        return unavailable_response()

    app.add_exception_handler(sa.exc.DBAPIError, database_error)
    app.add_exception_handler(sa.exc.TimeoutError, database_error)
