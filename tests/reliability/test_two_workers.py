"""Two workers race on the same outbox and never post twice.

- Two `tokentrail worker` processes and an API server without a worker (`TOKENTRAIL_RUN_WORKER=false`) on one
  PostgreSQL database (several workers need PostgreSQL: claims use FOR UPDATE SKIP LOCKED). Many PRs' webhooks and
  usage are queued before the workers start, and more usage arrives while they run, so refreshes of the same PR
  are claimed by both: each PR still gets exactly one comment creation and one check run creation.
- In process, two threads call `jobs.claim` at once, each in its own session, on due and lease-expired jobs: no
  job is claimed twice, none is left behind (on both databases: SQLite's claim checks the row it updated).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.db import session_scope, utcnow
from app.tables import JOBS
from tests.conftest import start_server
from tests.reliability.support import (
    OPENED,
    REPO,
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


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # several workers need PostgreSQL
def test_two_worker_processes_post_each_comment_once(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(501, 501 + scale.race_pulls))
    add_pulls_to_fake(github, scenario.pulls)
    # GitHub answers writes slowly, so both workers are in the middle of a job at the same time.
    for method, pattern in (("POST", "/repos/*/issues/*/comments"), ("PATCH", "/repos/*/issues/comments/*")):
        github.delay(method, pattern, 0.15)
    github.delay("*", "/repos/*/check-runs*", 0.1)
    env = app_env(github, app_keys[0])
    server = start_server(
        database_url=database_url, log=tmp_path / "server.log", env={**env, "TOKENTRAIL_RUN_WORKER": "false"}
    )
    sender, db = Sender(server.url, api_token), Db(database_url)
    workers: list[WorkerProcess] = []
    try:
        sender.send_all(scenario.deliveries, threads=4)
        assert db.job_states().get("queued", 0) >= len(scenario.pulls)
        workers = [start_worker(database_url=database_url, log=tmp_path / f"worker-{i}.log", env=env) for i in (1, 2)]

        # More usage for every PR while the workers run: refreshes of a PR get queued while another one runs.
        for round_ in range(3):
            more = []
            for pull in scenario.pulls:
                at = OPENED + timedelta(hours=2, minutes=round_)
                more.append(canonical(f"more-{pull.number}-{round_}", cost="0.20", at=at, branch=pull.branch))
                scenario.cost[pull.number] += Decimal("0.20")
                scenario.records[pull.number] += 1
            sender.post_records(more)
            time.sleep(0.5)  # pacing only: let the workers get into the middle of it

        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every PR's comment",
            timeout=120 + 3 * scale.race_pulls,
        )
        for worker in workers:
            assert worker.process.poll() is None, worker.log.read_text()
            assert "Traceback" not in worker.log.read_text(), worker.log.read_text()
        assert db.failed_jobs() == []
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
        # Both processes did work: each minted its own installation token.
        assert len(github.calls_to("POST", "/app/installations/77/access_tokens")) >= 2
        assert all(len(github.comments(REPO, pull.number)) == 1 for pull in scenario.pulls)
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        sender.close()
        db.close()


def test_concurrent_claims_take_each_job_once(factory: sessionmaker[Session], scale: Scale) -> None:
    count = scale.claim_jobs
    with session_scope(factory) as session:
        for i in range(count):
            jobs.enqueue(session, kind="refresh", key=f"acme/widgets#{i}")
        # A third of them were running in a worker that died: their lease has run out.
        stale = utcnow() - jobs.LEASE - timedelta(minutes=1)
        session.execute(sa.update(JOBS).where(JOBS.c.id % 3 == 0).values(state="running", locked_at=stale, attempts=1))
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def remaining() -> int:
        with factory() as session:
            return int(
                session.execute(
                    sa.select(sa.func.count()).where(
                        sa.or_(JOBS.c.state == "queued", sa.and_(JOBS.c.state == "running", JOBS.c.locked_at < stale))
                    )
                ).scalar_one()
            )

    def claim_all(slot: int) -> None:
        try:
            barrier.wait(timeout=30)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with factory() as session, session.begin():
                    job = jobs.claim(session)
                    if job is not None:
                        time.sleep(0.001)  # hold the row lock a moment: the other thread must skip it
                if job is not None:
                    claimed[slot].append(job.id)
                elif remaining() == 0:
                    return
            raise AssertionError("claiming did not finish")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=claim_all, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = claimed[0] + claimed[1]
    assert len(everything) == len(set(everything)) == count, "a job was claimed twice or not at all"
    # Which thread wins each claim is up to the scheduler (on SQLite one thread may take them all); what must hold
    # is that together they took every job exactly once.
    with factory() as session:
        states = session.execute(sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)).all()
    assert dict(states) == {"running": count}
