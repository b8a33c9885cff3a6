"""`tokentrail healthcheck` (DESIGN §9): the database answers and, for a process that runs a worker, the worker's
heartbeat (app.heartbeat) is fresh. Made for a container's HEALTHCHECK: the API and the worker run the same image,
and a worker serves no HTTP to poll."""

from __future__ import annotations

import sqlalchemy as sa

from app.heartbeat import heartbeat_age
from app.settings import Settings


def database_answers(url: str) -> str | None:
    """None when `SELECT 1` succeeds, else what went wrong (one line)."""
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {"timeout": 5}
    engine = sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        return str(error.orig if isinstance(error, sa.exc.DBAPIError) else error).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


def check_health(settings: Settings, *, worker: bool, max_age: float) -> list[str]:
    """What is wrong, or nothing."""
    problems = []
    if (error := database_answers(settings.database_url)) is not None:
        problems.append(f"the database does not answer: {error}")
    if worker:
        path = settings.worker_heartbeat_path
        age = heartbeat_age(path)
        if age is None:
            problems.append(f"no worker heartbeat at {path} (is a worker running here?)")
        elif age > max_age:
            problems.append(f"the worker's heartbeat is {age:.0f} s old (more than {max_age:.0f} s): it is stuck")
    return problems
