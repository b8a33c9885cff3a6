"""The worker's heartbeat: a small file its loop rewrites while it runs, which `tokentrail healthcheck` reads.

A file rather than a row: a container's HEALTHCHECK runs inside that container, so the file it reads is exactly
its own worker's, and beating costs the database nothing. The loop beats between jobs and at least every few
seconds while idle; a worker stuck in one job, or gone, stops beating and turns stale.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("tokentrail.heartbeat")
MIN_INTERVAL_SECONDS = 2.0


def default_heartbeat_path(database_url: str) -> Path:
    """One file per database in the temporary folder: workers of different databases on one host never share it."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"tokentrail-worker-{digest}.heartbeat"


class Heartbeat:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._last = float("-inf")
        self._failing = False

    def beat(self) -> None:
        """Record that the loop is alive (at most every MIN_INTERVAL_SECONDS; the write is atomic)."""
        now = self._clock()
        if now - self._last < MIN_INTERVAL_SECONDS:
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f"{now:.3f} {os.getpid()}\n")
            os.replace(temporary, self.path)
        except OSError as error:  # the worker goes on; its healthcheck will say there is no heartbeat
            if not self._failing:
                log.warning("cannot write the worker heartbeat %s: %s", self.path, error)
            self._failing = True
            return
        self._failing = False
        self._last = now

    def stop(self) -> None:
        """The loop ended on purpose: no heartbeat is left to look alive."""
        self.path.unlink(missing_ok=True)


def heartbeat_age(path: Path, *, now: float | None = None) -> float | None:
    """Seconds since the last beat, or None when there is no readable heartbeat."""
    try:
        stamp = float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max((time.time() if now is None else now) - stamp, 0.0)
