"""Which of several `tokentrail serve` processes runs the in-process worker: the one holding the database's lock.

`tokentrail serve --workers N` starts N API processes on one port; each would start a worker, and N workers on two
cores take CPU from the API while the queue needs one. So each process stands for election before starting its
worker, and only the winner runs it; the others try again every few seconds, so a leader that dies is replaced.

- PostgreSQL: a session-level advisory lock, held on a connection of its own for the leader's life. The server
  releases it when that connection ends, a crash included. Losing it while leading (the database restarted) can
  leave two workers running for a while: harmless, claims use FOR UPDATE SKIP LOCKED.
- SQLite: an exclusive `flock` on a file beside the database file, which the kernel releases when the process
  ends. Two workers on SQLite would also be correct (a claim checks the row it updated), only slower.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# pg_advisory_lock's key: "tokentrail worker" as a 64-bit integer, so no other application's lock collides.
ADVISORY_KEY = int.from_bytes(b"ttworker", "big") & 0x7FFF_FFFF_FFFF_FFFF
RETRY_SECONDS = 5.0


class WorkerElection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: sa.Connection | None = None
        self._file: Any = None

    def try_lead(self) -> bool:
        """Take the lead if nobody holds it; True while this process holds it."""
        if self._connection is not None or self._file is not None:
            return True
        if self._engine.dialect.name == "postgresql":
            connection = self._engine.connect()
            try:
                won = bool(connection.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_KEY))).scalar())
                connection.commit()  # end the transaction; the session-level lock stays
            except Exception:
                connection.close()
                raise
            if not won:
                connection.close()
                return False
            self._connection = connection
            return True
        path = _lock_path(self._engine)
        if path is None:  # an in-memory database lives in one process: nothing to elect
            self._file = True
            return True
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def resign(self) -> None:
        """Give the lead up (the process is stopping)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a connection already gone released the lock with it
                self._connection.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
                self._connection.close()
            self._connection = None
        if self._file is not None and self._file is not True:
            self._file.close()  # closing the descriptor releases the flock
        self._file = None


def _lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(os.path.abspath(database) + ".worker-lock")
