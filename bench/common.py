"""Helpers shared by the benchmarks: a real server in a subprocess, a throwaway PostgreSQL database, tokens,
percentiles and peak-RSS sampling. Not a benchmark itself."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.db import create_db_engine, make_sessionmaker, session_scope  # noqa: E402
from app.tokens import create_token  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(database_url: str, log: Path, *, env: dict[str, str] | None = None, processes: int = 1) -> Iterator[str]:
    """`python -m app.cli serve [--workers N]` on a free port; yields its base URL once /healthz answers."""
    port = free_port()
    environ = {
        **os.environ,
        "TOKENTRAIL_DATABASE_URL": database_url,
        "TOKENTRAIL_RUN_WORKER": "false",
        "TOKENTRAIL_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
            + (["--workers", str(processes)] if processes > 1 else []),
            cwd=ROOT,
            env=environ,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited:\n{log.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(log.read_text())
            yield url
        finally:
            process.terminate()
            process.wait(timeout=60)


@contextmanager
def postgres_database(admin_url: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh database next to the admin URL's, dropped afterwards unless `keep`."""
    name = f"tokentrail_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_tokens(database_url: str, owners: Sequence[str]) -> dict[str, str]:
    engine = create_db_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        tokens = {owner: create_token(session, owner=owner, name="bench") for owner in owners}
    engine.dispose()
    return tokens


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 1,000 values is the 990th smallest)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a running process, in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_measured(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, stdout: Path | None = None
) -> tuple[int, float, int]:
    """Run a command to its end; (exit status, seconds, peak RSS in KiB).

    The peak is the larger of VmHWM sampled every 20 ms and the child's own ru_maxrss from wait4 (exact, and
    only this child's, unlike RUSAGE_CHILDREN)."""
    out = stdout.open("wb") if stdout else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampled = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            sampled = max(sampled, peak_rss_kib(process.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout:
            out.close()  # type: ignore[union-attr]
    return process.returncode, elapsed, max(sampled, int(usage.ru_maxrss))
