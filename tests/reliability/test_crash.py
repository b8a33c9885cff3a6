"""`kill -9` of the server, then a restart on the same database, on SQLite and PostgreSQL.

1. Clients stream usage batches and note each batch the server acknowledged (200, every record accepted). The
   server is killed mid-stream with SIGKILL. After the restart the stored records are exactly the acknowledged
   ones, each once; a batch whose answer never came is either all there or not there at all (one transaction).
   Resending those batches then completes the data set, and nothing is doubled.
2. Comment work is pending in the outbox when the server is killed: jobs backing off because GitHub answers 502,
   and a job killed in the middle of creating a comment (GitHub created it, the server never heard back). After
   the restart every job completes: one comment per PR with the right totals, the half-done one found and edited
   rather than posted twice.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveServer, start_server
from tests.reliability.support import (
    OPENED,
    REPO,
    Db,
    Scale,
    Sender,
    SlowFakeGitHub,
    add_pulls_to_fake,
    app_env,
    bot_comments,
    build_scenario,
    canonical,
    check_one_comment_and_one_check_run_each,
    check_totals,
    comments_show,
    wait_for,
    writes_to,
)

RECORD_COST = Decimal("0.0125")


def _batch(number: int, size: int) -> bytes:
    records = [
        canonical(
            f"b{number:05d}-{i:04d}",
            cost=str(RECORD_COST),
            at=OPENED + timedelta(seconds=number * size + i),
            branch=f"feat/stream-{number % 7}",
        )
        for i in range(size)
    ]
    return json.dumps(records).encode()


class Streamer:
    """Client threads posting batches one after another, noting which ones the server acknowledged."""

    def __init__(self, url: str, token: str, batches: dict[int, bytes], size: int, *, threads: int = 2) -> None:
        self.url, self.token, self.size = url, token, size
        self.acknowledged: set[int] = set()
        self.unanswered: set[int] = set()  # sent, but no answer came back (the server died with it in flight)
        self.lock = threading.Lock()
        numbers = sorted(batches)
        self.threads = [
            threading.Thread(target=self._run, args=([(n, batches[n]) for n in numbers[i::threads]],), daemon=True)
            for i in range(threads)
        ]
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a streaming client hung"
        if self.errors:
            raise self.errors[0]

    def acked(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def _run(self, work: list[tuple[int, bytes]]) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "content-type": "application/json"}
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for number, body in work:
                try:
                    response = http.post("/v1/usage", content=body, headers=headers)
                except httpx.ConnectError:
                    return  # the server is gone: this batch was never received
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered.add(number)
                    return
                try:
                    answer: dict[str, Any] = response.json()
                    assert response.status_code == 200, (response.status_code, answer)
                    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (self.size, 0, [])
                except BaseException as error:
                    with self.lock:
                        self.errors.append(error)
                    return
                with self.lock:
                    self.acknowledged.add(number)


def _kill_9(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    assert server.process.returncode == -signal.SIGKILL


def test_kill_9_mid_stream_keeps_exactly_the_acknowledged_batches(
    database_url: str, tmp_path: Path, api_token: str, scale: Scale
) -> None:
    size, count = scale.batch_records, scale.crash_batches
    batches = {number: _batch(number, size) for number in range(count)}
    server = start_server(database_url=database_url, log=tmp_path / "server-1.log")
    streamer = Streamer(server.url, api_token, batches, size)
    db = Db(database_url)
    restarted: LiveServer | None = None
    try:
        streamer.start()
        wait_for(lambda: streamer.acked() >= count // 3, what="a third of the batches to be acknowledged")
        _kill_9(server)
        streamer.join()
        acknowledged = set(streamer.acknowledged)
        assert count // 3 <= len(acknowledged) < count, "the server was not killed mid-stream"

        restarted = start_server(database_url=database_url, log=tmp_path / "server-2.log")
        stored = Counter(int(record_id[1:6]) for record_id in db.record_ids())
        for number in acknowledged:
            assert stored[number] == size, f"acknowledged batch {number} has {stored[number]} of {size} records"
        for number, records in stored.items():
            assert records == size, f"batch {number} is partly stored: {records} of {size}"
        assert set(stored) - acknowledged <= streamer.unanswered, "a batch never sent is stored"

        # The client resends what it has no acknowledgement for; the server counts each record once.
        sender = Sender(restarted.url, api_token)
        try:
            for number in sorted(set(batches) - acknowledged):
                answer = sender.http.post(
                    "/v1/usage", content=batches[number], headers={**sender.auth, "content-type": "application/json"}
                ).json()
                expected = (0, size) if number in stored else (size, 0)
                assert (answer["accepted"], answer["duplicates"]) == expected, (number, answer)
            assert db.usage_count() == count * size
            assert Counter(int(record_id[1:6]) for record_id in db.record_ids()) == dict.fromkeys(batches, size)
            usage = sender.http.get(f"/v1/repos/{REPO}/usage", headers=sender.auth).json()
            assert usage["records"] == count * size
            assert Decimal(usage["cost_usd"]) == RECORD_COST * count * size
        finally:
            sender.close()
    finally:
        if restarted is not None:
            restarted.stop()
        server.stop()
        db.close()


def test_kill_9_with_comment_jobs_pending_then_restart_completes_them(
    database_url: str,
    tmp_path: Path,
    github: SlowFakeGitHub,
    app_keys: tuple[str, str],
    api_token: str,
    scale: Scale,
) -> None:
    failing = build_scenario(range(301, 301 + scale.pulls))  # GitHub answers 502 to their comments
    cut = build_scenario([399])  # its comment is created, but the answer comes too late: the server dies first
    add_pulls_to_fake(github, failing.pulls + cut.pulls)
    for pull in failing.pulls:
        github.fail_next("POST", f"/repos/{REPO}/issues/{pull.number}/comments", 502, times=1000)
    github.delay("POST", f"/repos/{REPO}/issues/399/comments", 30)
    env = app_env(github, app_keys[0])
    server = start_server(database_url=database_url, log=tmp_path / "server-1.log", env=env)
    sender, db = Sender(server.url, api_token), Db(database_url)
    restarted: LiveServer | None = None
    try:
        sender.send_all(failing.deliveries)

        def comment_posts_failed() -> bool:
            failed = {c.path for c in github.calls_to("POST", f"/repos/{REPO}/issues/") if c.status == 502}
            return all(f"/repos/{REPO}/issues/{p.number}/comments" in failed for p in failing.pulls)

        wait_for(comment_posts_failed, what="a failed comment POST for every PR", timeout=60)
        sender.send_all(cut.deliveries)
        wait_for(lambda: bot_comments(github, 399), what="the comment of #399 to be created", timeout=60)
        assert db.job_states().get("running") == 1  # the job that created it is still waiting for GitHub's answer
        _kill_9(server)
        sender.close()

        github.clear_faults()
        github.clear_delays()
        # The killed job holds its lease (jobs.LEASE, five minutes) and the failed ones back off: instead of
        # waiting, move the clock on for the jobs table.
        db.expire(leases=True)
        restarted = start_server(database_url=database_url, log=tmp_path / "server-2.log", env=env)
        sender = Sender(restarted.url, api_token)
        wait_for(
            lambda: db.pending_jobs() == 0 and comments_show(github, failing) and comments_show(github, cut),
            what="every pending comment after the restart",
            timeout=90 + 5 * scale.pulls,
        )
        assert db.failed_jobs() == []
        for scenario in (failing, cut):
            check_totals(sender, scenario)
            check_one_comment_and_one_check_run_each(github, scenario)
        assert writes_to(github, cut.pulls[0]).comment_patches >= 1  # found and edited, not posted a second time
    finally:
        if restarted is not None:
            restarted.stop()
        server.stop()
        sender.close()
        db.close()
