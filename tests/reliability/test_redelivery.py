"""Every webhook and every usage batch delivered three times (same delivery ids, same records), in shuffled order:
the totals are those of a single delivery and each pull request gets exactly one comment and one check run.

A real `tokentrail serve` in GitHub App mode against the fake GitHub, on SQLite and PostgreSQL. Two variants:
- the deliveries all land before any worker runs, then one worker drains the outbox: the debounce must fold the
  whole scenario into exactly one comment creation and one check run creation per PR, and not one edit;
- the deliveries race the in-process worker from several client threads: still one comment and one check run per
  PR, and once everything is settled, a further redelivery of everything queues no job and writes nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import start_server
from tests.reliability.support import (
    Db,
    Scale,
    Sender,
    SlowFakeGitHub,
    Writes,
    add_pulls_to_fake,
    app_env,
    build_scenario,
    check_one_comment_and_one_check_run_each,
    check_totals,
    comments_show,
    start_worker,
    wait_for,
    writes_to,
)


def test_three_deliveries_before_the_worker_runs_fold_into_one_comment_each(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(101, 101 + scale.pulls))
    add_pulls_to_fake(github, scenario.pulls)
    env = app_env(github, app_keys[0])
    server = start_server(
        database_url=database_url, log=tmp_path / "server.log", env={**env, "TOKENTRAIL_RUN_WORKER": "false"}
    )
    sender, db = Sender(server.url, api_token), Db(database_url)
    worker = None
    try:
        copies = scenario.deliveries * 3
        random.Random(20261102).shuffle(copies)
        sender.send_all(copies)
        sender.check_each_delivery_counted_once()
        assert db.usage_count() == scenario.total_records
        assert github.calls == []  # no worker yet: nothing has been sent to GitHub

        worker = start_worker(database_url=database_url, log=tmp_path / "worker.log", env=env)
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every PR's comment",
            timeout=60 + 5 * scale.pulls,
        )
        assert db.failed_jobs() == []
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
        for pull in scenario.pulls:
            assert writes_to(github, pull) == Writes(comment_posts=1, comment_patches=0, run_posts=1, run_patches=0)

        # A fourth delivery of everything: acknowledged again, and no job is even queued.
        jobs_before, calls_before = len(db.jobs()), len(github.calls)
        sender.send_all(scenario.deliveries)
        assert len(db.jobs()) == jobs_before and db.pending_jobs() == 0
        assert len(github.calls) == calls_before
        check_totals(sender, scenario)
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        sender.close()
        db.close()


def test_three_deliveries_racing_the_worker_give_one_comment_each(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    scenario = build_scenario(range(201, 201 + scale.pulls))
    add_pulls_to_fake(github, scenario.pulls)
    server = start_server(database_url=database_url, log=tmp_path / "server.log", env=app_env(github, app_keys[0]))
    sender, db = Sender(server.url, api_token), Db(database_url)
    try:
        copies = scenario.deliveries * 3
        random.Random(99).shuffle(copies)
        sender.send_all(copies, threads=4)
        sender.check_each_delivery_counted_once()
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, scenario),
            what="every PR's comment",
            timeout=60 + 5 * scale.pulls,
        )
        assert db.failed_jobs() == []
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)

        jobs_before, calls_before = len(db.jobs()), len(github.calls)
        shuffled = list(scenario.deliveries)
        random.Random(7).shuffle(shuffled)
        sender.send_all(shuffled, threads=4)
        assert len(db.jobs()) == jobs_before and db.pending_jobs() == 0
        assert len(github.calls) == calls_before
        check_totals(sender, scenario)
        check_one_comment_and_one_check_run_each(github, scenario)
    finally:
        server.stop()
        sender.close()
        db.close()
