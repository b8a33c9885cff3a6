"""`tokentrail healthcheck`, as a container's HEALTHCHECK runs it, on SQLite and PostgreSQL: the database answers,
and where a worker runs its heartbeat is fresh — a stopped (stuck) worker turns it stale, a worker that exits
leaves none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.heartbeat import Heartbeat, heartbeat_age
from tests.conftest import ROOT, start_server


def healthcheck(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "healthcheck", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


@pytest.fixture
def worker_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TOKENTRAIL_DATABASE_URL": database_url, "TOKENTRAIL_HEARTBEAT_PATH": str(tmp_path / "worker.heartbeat")}


@pytest.fixture
def worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env={**os.environ, **worker_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait()


def test_a_running_worker_is_healthy_a_stuck_one_is_not(
    worker: subprocess.Popen[bytes], worker_env: dict[str, str]
) -> None:
    def healthy(*args: str) -> bool:
        return healthcheck("--worker", *args, env=worker_env).returncode == 0

    wait_until(healthy, what="the worker's heartbeat is there")
    os.kill(worker.pid, signal.SIGSTOP)  # a worker stuck in a job beats no more
    stale = subprocess.CompletedProcess[str](args=[], returncode=0)

    def unhealthy() -> bool:
        nonlocal stale
        stale = healthcheck("--worker", "--max-age", "3", env=worker_env)
        return stale.returncode == 1

    wait_until(unhealthy, what="the heartbeat of the stopped worker is stale")
    assert "heartbeat is" in stale.stderr and "stuck" in stale.stderr
    os.kill(worker.pid, signal.SIGCONT)
    wait_until(lambda: healthy("--max-age", "3"), what="the resumed worker beats again")

    worker.terminate()  # a worker that exits on purpose leaves no heartbeat behind
    assert worker.wait(timeout=60) == 0
    gone = healthcheck("--worker", env=worker_env)
    assert gone.returncode == 1
    assert "no worker heartbeat" in gone.stderr


def test_an_old_heartbeat_is_stale(worker_env: dict[str, str]) -> None:
    path = Path(worker_env["TOKENTRAIL_HEARTBEAT_PATH"])
    Heartbeat(path, clock=lambda: time.time() - 700).beat()  # beyond the 600 s it is compared with, whatever rounding
    age = heartbeat_age(path)
    assert age is not None and age >= 600
    result = healthcheck("--worker", env=worker_env)
    assert result.returncode == 1
    assert "s old" in result.stderr
    assert "database" not in result.stderr  # the database itself answers


def test_an_api_replica_needs_only_the_database(worker_env: dict[str, str], database_url: str) -> None:
    assert healthcheck("--no-worker", env=worker_env).returncode == 0
    api_only = healthcheck(env={**worker_env, "TOKENTRAIL_RUN_WORKER": "false"})
    assert api_only.returncode == 0, api_only.stderr
    # With a worker expected (TOKENTRAIL_RUN_WORKER defaults to true) and none running, it is unhealthy.
    assert healthcheck(env=worker_env).returncode == 1


def test_a_database_that_does_not_answer_is_unhealthy(database_url: str, tmp_path: Path) -> None:
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        broken = f"sqlite:///{tmp_path}/no-such-folder/tokentrail.db"
    else:
        broken = url.set(database="tokentrail_does_not_exist").render_as_string(hide_password=False)
    result = healthcheck("--no-worker", env={"TOKENTRAIL_DATABASE_URL": broken})
    assert result.returncode == 1
    assert "the database does not answer" in result.stderr


def test_serve_with_its_in_process_worker_is_healthy(database_url: str, tmp_path: Path) -> None:
    """The single-container default: `serve` runs the worker in-process and beats at the default path, which the
    healthcheck finds from the same settings."""
    server = start_server(database_url=database_url, log=tmp_path / "server.log")
    try:
        env = {"TOKENTRAIL_DATABASE_URL": database_url}
        wait_until(lambda: healthcheck(env=env).returncode == 0, what="serve's worker beats")
    finally:
        server.stop()
