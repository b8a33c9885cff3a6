"""Several API processes and several workers on one database give the results of one process.

- PostgreSQL: two `tokentrail serve` processes (real uvicorn, no in-process worker) and two `tokentrail worker`
  processes, all running before the first delivery. Every webhook and usage batch of the scenario goes to *both*
  API processes at once (a redelivery racing in another process), and more usage arrives while the workers run:
  each delivery is acknowledged once, each record counted once, every PR has exactly one comment and one check run,
  and both API processes report the totals of a single delivery.
- `tokentrail serve --workers 2` (both databases): two API processes on one port, one of which wins the worker
  election (app.election); the same scenario gives the same comments and totals, and the database shows one holder.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.election import ADVISORY_KEY
from tests.conftest import LiveServer, start_server
from tests.reliability.support import (
    OPENED,
    Db,
    Scale,
    Sender,
    SlowFakeGitHub,
    WorkerProcess,
    add_pulls_to_fake,
    app_env,
    build_scenario,
    canonical,
    check_one_comment_and_one_check_run_each,
    check_totals,
    comments_show,
    start_worker,
    wait_for,
)


def _slow_writes(github: SlowFakeGitHub) -> None:
    # GitHub answers writes slowly, so both workers are in the middle of a job at the same time.
    for method, pattern in (("POST", "/repos/*/issues/*/comments"), ("PATCH", "/repos/*/issues/comments/*")):
        github.delay(method, pattern, 0.1)
    github.delay("*", "/repos/*/check-runs*", 0.05)


def _in_parallel(*calls: tuple[Sender, list]) -> None:  # type: ignore[type-arg]
    errors: list[BaseException] = []

    def run(sender: Sender, deliveries: list) -> None:  # type: ignore[type-arg]
        try:
            sender.send_all(deliveries, threads=3)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # several workers need PostgreSQL
def test_two_api_processes_and_two_workers_count_once_and_comment_once(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(701, 701 + scale.race_pulls))
    add_pulls_to_fake(github, scenario.pulls)
    _slow_writes(github)
    env = app_env(github, app_keys[0])
    servers: list[LiveServer] = []
    workers: list[WorkerProcess] = []
    db = Db(database_url)
    senders: list[Sender] = []
    try:
        for i in (1, 2):
            servers.append(
                start_server(
                    database_url=database_url,
                    log=tmp_path / f"server-{i}.log",
                    env={**env, "TOKENTRAIL_RUN_WORKER": "false"},
                )
            )
            workers.append(start_worker(database_url=database_url, log=tmp_path / f"worker-{i}.log", env=env))
        senders = [Sender(server.url, api_token) for server in servers]
        # Every delivery to both processes at once, the second copy in reverse order so copies race throughout.
        _in_parallel((senders[0], scenario.deliveries), (senders[1], list(reversed(scenario.deliveries))))
        for round_ in range(2):  # more usage while the workers run, alternately through each process
            more = []
            for pull in scenario.pulls:
                at = OPENED + timedelta(hours=2, minutes=round_)
                more.append(canonical(f"more-{pull.number}-{round_}", cost="0.20", at=at, branch=pull.branch))
                scenario.cost[pull.number] += Decimal("0.20")
                scenario.records[pull.number] += 1
            senders[round_ % 2].post_records(more)
            time.sleep(0.3)

        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every PR's comment",
            timeout=120 + 3 * scale.race_pulls,
        )
        for process in [*servers, *workers]:
            assert process.process.poll() is None, process.log.read_text()
            assert "Traceback" not in process.log.read_text(), process.log.read_text()
        assert db.failed_jobs() == []
        merged = Sender(servers[0].url, api_token)
        merged.answers = senders[0].answers + senders[1].answers
        merged.check_each_delivery_counted_once()
        merged.close()
        assert db.usage_count() == scenario.total_records
        for sender in senders:  # both processes give the figures of one delivery
            check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
    finally:
        for worker in workers:
            worker.stop()
        for server in servers:
            server.stop()
        for sender in senders:
            sender.close()
        db.close()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_serve_with_two_processes_elects_one_worker(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(801, 801 + scale.race_pulls))
    add_pulls_to_fake(github, scenario.pulls)
    _slow_writes(github)
    server = start_server(
        database_url=database_url,
        log=tmp_path / "server.log",
        env=app_env(github, app_keys[0]),
        args=("--workers", "2"),
    )
    db = Db(database_url)
    sender = Sender(server.url, api_token)
    try:
        sender.send_all(scenario.deliveries, threads=4)
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every PR's comment",
            timeout=120 + 3 * scale.race_pulls,
        )
        assert server.process.poll() is None, server.log.read_text()
        assert "Traceback" not in server.log.read_text(), server.log.read_text()
        assert db.failed_jobs() == []
        sender.check_each_delivery_counted_once()
        assert db.usage_count() == scenario.total_records
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
        if database_url.startswith("postgresql"):
            holders = _advisory_holders(database_url)
            assert len(holders) == 1, holders
    finally:
        server.stop()
        sender.close()
        db.close()


def _advisory_holders(database_url: str) -> list[int]:
    """Backends holding the worker election's advisory lock (a bigint key is split in two 32-bit halves)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :high AND objid = :low AND objsubid = 1 "
                    # this test's database only: servers of other databases elect their own workers
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"high": ADVISORY_KEY >> 32, "low": ADVISORY_KEY & 0xFFFF_FFFF},
            ).all()
        return [int(row.pid) for row in rows]
    finally:
        engine.dispose()
