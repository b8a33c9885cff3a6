"""What the reliability tests share: the scale, a scenario of pull requests with their webhooks and usage batches
(LiteLLM, OTLP, canonical) and the totals they must add up to, a sender that checks every acknowledgement, a fake
GitHub that can also answer slowly, worker subprocesses, and bounded polling.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import sqlalchemy as sa

from app.db import create_db_engine
from app.formatting import format_usd
from app.tables import JOBS, USAGE
from tests.conftest import ROOT
from tests.fake_github import FakeGitHub
from tests.github_payloads import make_installation_event, make_pull_request_event, make_review_event, webhook_headers

APP_ID = 4242
INSTALLATION = 77
REPO = "acme/widgets"
OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    name: str
    pulls: int  # pull requests of the redelivery and crash scenarios
    crash_batches: int  # batches a client streams at the server that is killed
    batch_records: int  # records in each of those batches
    race_pulls: int  # pull requests two worker processes race on
    claim_jobs: int  # jobs two threads claim at once
    schema_requests: int  # requests schemathesis sends (SQLite run)
    schema_requests_postgres: int  # … and against PostgreSQL

    @classmethod
    def ci(cls) -> Scale:
        return cls("ci", 4, 60, 100, 12, 300, 10_000, 1_500)

    @classmethod
    def large(cls) -> Scale:
        return cls("large", 25, 400, 250, 60, 3_000, 50_000, 10_000)


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy; fail after `timeout` seconds (bounded, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- the scenario ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pull:
    number: int

    @property
    def branch(self) -> str:
        return f"feat/r{self.number}"

    @property
    def head_sha(self) -> str:
        return hashlib.sha1(f"head of #{self.number}".encode()).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as GitHub or a gateway sends it; resending it byte for byte is a redelivery."""

    path: str
    body: bytes
    headers: dict[str, str]
    records: int = 0  # usage records in the batch (0 for a webhook)
    label: str = ""

    @property
    def is_webhook(self) -> bool:
        return self.path == "/github/webhook"


@dataclass
class Scenario:
    pulls: list[Pull]
    deliveries: list[Delivery] = field(default_factory=list)
    cost: dict[int, Decimal] = field(default_factory=dict)  # PR number → expected total
    records: dict[int, int] = field(default_factory=dict)  # PR number → expected record count

    def headline(self, number: int) -> str:
        return f"AI spend on this pull request: **{format_usd(self.cost[number])}**"

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def _litellm_call(call_id: str, pull: Pull, *, cost: float, at: datetime) -> dict[str, Any]:
    return {
        "id": call_id,
        "call_type": "acompletion",
        "status": "success",
        "custom_llm_provider": "openai",
        "startTime": at.timestamp(),
        "endTime": at.timestamp() + 2,
        "model": "gpt-5",
        "response_cost": cost,
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "metadata": {
            "user_api_key_user_email": "carol@acme.test",
            "spend_logs_metadata": {"repo": REPO, "branch": pull.branch, "agent": "acme-agent"},
        },
        "request_tags": [],
    }


def _otlp_logs(pull: Pull, events: list[tuple[int, str, datetime]]) -> dict[str, Any]:
    """An OTLP logs export of Claude Code api_request events (sequence, cost, time), VCS attributes on the resource."""

    def attr(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value} if isinstance(value, str) else {"intValue": str(value)}}

    records = []
    for sequence, cost, at in events:
        nanos = str(int(at.timestamp() * 1e9))
        records.append(
            {
                "timeUnixNano": nanos,
                "observedTimeUnixNano": nanos,
                "body": {"stringValue": "claude_code.api_request"},
                "attributes": [
                    attr("event.name", "api_request"),
                    attr("event.timestamp", at.isoformat().replace("+00:00", "Z")),
                    attr("event.sequence", sequence),
                    attr("session.id", f"session-{pull.number}"),
                    attr("user.email", "alice@acme.test"),
                    attr("model", "claude-sonnet-4-5"),
                    attr("input_tokens", 2000),
                    attr("output_tokens", 700),
                    attr("cache_read_tokens", 30000),
                    attr("cache_creation_tokens", 0),
                    attr("cost_usd", cost),
                ],
            }
        )
    resource = [
        attr("service.name", "claude-code"),
        attr("vcs.repository.url.full", f"https://github.com/{REPO}"),
        attr("vcs.ref.head.name", pull.branch),
    ]
    scope = {"name": "com.anthropic.claude_code.events"}
    return {
        "resourceLogs": [{"resource": {"attributes": resource}, "scopeLogs": [{"scope": scope, "logRecords": records}]}]
    }


def canonical(record_id: str, *, cost: str, at: datetime, branch: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "timestamp": at.isoformat(),
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": cost,
        "repo": REPO,
        "branch": branch,
        "actor": "alice",
        "agent": "codex",
        **extra,
    }


def _usage(path: str, payload: Any, records: int, label: str) -> Delivery:
    headers = {"content-type": "application/json"}
    return Delivery(path, json.dumps(payload).encode(), headers, records=records, label=label)


def _webhook(event: str, payload: dict[str, Any], label: str) -> Delivery:
    body = json.dumps(payload).encode()
    return Delivery("/github/webhook", body, webhook_headers(event, body), label=label)


def build_scenario(numbers: Iterable[int]) -> Scenario:
    """For each PR: an `opened` webhook and an approving review, a LiteLLM batch, an OTLP export and a canonical
    batch (two records each, before and after the PR was opened); plus one installation event and one canonical
    batch spanning every PR. Costs are exact in binary and in decimal, so every total is known to the cent."""
    scenario = Scenario(pulls=[Pull(n) for n in numbers])
    deliveries = [_webhook("installation", make_installation_event(account="acme", installation_id=INSTALLATION), "i")]
    spanning = []
    for pull in scenario.pulls:
        n = pull.number
        opened = make_pull_request_event(
            "opened", number=n, head_ref=pull.branch, head_sha=pull.head_sha, created_at=OPENED, title=f"Change {n}"
        )
        review = make_review_event("approved", pull_event=opened, submitted_at=OPENED + timedelta(hours=3))
        review["review"]["id"] = 90_000 + n
        deliveries += [
            _webhook("pull_request", opened, f"opened #{n}"),
            _webhook("pull_request_review", review, f"review #{n}"),
        ]
        calls = [
            _litellm_call(f"llm-{n}-1", pull, cost=0.25, at=OPENED - timedelta(hours=2)),
            _litellm_call(f"llm-{n}-2", pull, cost=0.5, at=OPENED + timedelta(minutes=10)),
        ]
        deliveries.append(_usage("/v1/ingest/litellm", calls, 2, f"litellm #{n}"))
        events = [(1, "0.1250", OPENED - timedelta(hours=1)), (2, "0.3750", OPENED + timedelta(minutes=20))]
        deliveries.append(_usage("/v1/ingest/otlp/v1/logs", _otlp_logs(pull, events), 2, f"otlp #{n}"))
        records = [
            canonical(f"c-{n}-1", cost="1.10", at=OPENED + timedelta(minutes=5), branch=pull.branch),
            canonical(
                f"c-{n}-2", cost="0.05", at=OPENED + timedelta(hours=1), branch=pull.branch, commit=pull.head_sha
            ),
        ]
        deliveries.append(_usage("/v1/usage", records, 2, f"canonical #{n}"))
        span_cost = Decimal(n) / 100  # differs by PR: a record counted on the wrong PR changes two totals
        spanning.append(canonical(f"span-{n}", cost=str(span_cost), at=OPENED + timedelta(hours=2), branch=pull.branch))
        scenario.cost[n] = Decimal("0.25") + Decimal("0.5") + Decimal("0.5") + Decimal("1.15") + span_cost
        scenario.records[n] = 7
    deliveries.append(_usage("/v1/usage", {"records": spanning}, len(spanning), "canonical, every PR"))
    scenario.deliveries = deliveries
    return scenario


def add_pulls_to_fake(github: FakeGitHub, pulls: Iterable[Pull]) -> None:
    """GitHub's truth for each PR: open, one commit, approved by bob (App mode re-reads all of it)."""
    for pull in pulls:
        github.add_pull(
            REPO,
            pull.number,
            title=f"Change {pull.number}",
            user="alice",
            head_ref=pull.branch,
            head_sha=pull.head_sha,
            base_ref="main",
            additions=100 + pull.number,
            deletions=20,
            changed_files=3,
            created_at=OPENED,
        )
        github.set_pull_commits(REPO, pull.number, [pull.head_sha])
        github.add_review(REPO, pull.number, "bob", "APPROVED", OPENED + timedelta(hours=3))


# -- talking to the server --------------------------------------------------------------------------------------------


class Sender:
    """Sends deliveries and checks each answer: a webhook is 202 the first time and 200 after; a usage batch is 200
    and counts each of its records as accepted or duplicate. Thread-safe; remembers every answer."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.auth = {"Authorization": f"Bearer {token}"}
        self._lock = threading.Lock()
        self.answers: list[tuple[Delivery, int, dict[str, Any]]] = []

    def close(self) -> None:
        self.http.close()

    def send(self, delivery: Delivery) -> dict[str, Any]:
        headers = delivery.headers if delivery.is_webhook else {**self.auth, **delivery.headers}
        response = self.http.post(delivery.path, content=delivery.body, headers=headers)
        answer: dict[str, Any] = response.json()
        if delivery.is_webhook:
            assert response.status_code in (200, 202), (delivery.label, response.status_code, answer)
            if response.status_code == 200:
                assert answer["reason"] == "delivery already received", answer
        else:
            assert response.status_code == 200, (delivery.label, response.status_code, answer)
            assert answer["rejected"] == [], (delivery.label, answer)
            assert answer["accepted"] + answer["duplicates"] == delivery.records, (delivery.label, answer)
        with self._lock:
            self.answers.append((delivery, response.status_code, answer))
        return answer

    def send_all(self, deliveries: list[Delivery], *, threads: int = 1) -> None:
        if threads == 1:
            for delivery in deliveries:
                self.send(delivery)
            return
        queue = list(reversed(deliveries))
        errors: list[BaseException] = []

        def run() -> None:
            while True:
                with self._lock:
                    if not queue or errors:
                        return
                    delivery = queue.pop()
                try:
                    self.send(delivery)
                except BaseException as error:
                    with self._lock:
                        errors.append(error)
                    return

        workers = [threading.Thread(target=run, name=f"sender-{i}") for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise errors[0]

    def check_each_delivery_counted_once(self) -> None:
        """Across all copies of one delivery: exactly one 202 for a webhook; each record accepted exactly once."""
        webhooks: dict[str, int] = {}
        accepted: dict[bytes, tuple[Delivery, int]] = {}
        for delivery, status, answer in self.answers:
            if delivery.is_webhook:
                key = delivery.headers["X-GitHub-Delivery"]
                webhooks[key] = webhooks.get(key, 0) + (status == 202)
            else:
                previous = accepted.get(delivery.body, (delivery, 0))[1]
                accepted[delivery.body] = (delivery, previous + answer["accepted"])
        assert all(count == 1 for count in webhooks.values()), webhooks
        for delivery, count in accepted.values():
            assert count == delivery.records, (delivery.label, count)

    def post_records(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Canonical records in one batch; every one must be accepted."""
        headers = {**self.auth, "content-type": "application/json"}
        response = self.http.post("/v1/usage", content=json.dumps(records).encode(), headers=headers)
        answer: dict[str, Any] = response.json()
        assert response.status_code == 200 and answer["accepted"] == len(records), answer
        return answer

    def pull_summary(self, number: int) -> dict[str, Any]:
        response = self.http.get(f"/v1/repos/{REPO}/pulls/{number}", headers=self.auth)
        assert response.status_code == 200, response.text
        summary: dict[str, Any] = response.json()
        return summary


def check_totals(sender: Sender, scenario: Scenario) -> None:
    """The API's figures for every PR are those of a single delivery of the scenario."""
    for pull in scenario.pulls:
        usage = sender.pull_summary(pull.number)["usage"]
        assert Decimal(usage["cost_usd"]) == scenario.cost[pull.number], (pull.number, usage)
        assert usage["records"] == scenario.records[pull.number], (pull.number, usage)


# -- what GitHub saw ------------------------------------------------------------------------------------------------


def bot_comments(github: FakeGitHub, number: int) -> list[dict[str, Any]]:
    return [c for c in github.comments(REPO, number) if c["user"]["login"] == github.bot_login]


@dataclass(frozen=True)
class Writes:
    comment_posts: int  # successful comment creations
    comment_patches: int  # successful comment edits
    run_posts: int  # successful check run creations
    run_patches: int


def writes_to(github: FakeGitHub, pull: Pull) -> Writes:
    """Successful writes GitHub received for one PR (failed attempts are not counted)."""
    comment_ids = {f"/repos/{REPO}/issues/comments/{c['id']}" for c in github.comments(REPO, pull.number)}
    run_ids = {f"/repos/{REPO}/check-runs/{r['id']}" for r in github.check_runs(REPO, pull.head_sha)}
    ok = [c for c in github.calls if c.status < 300]
    return Writes(
        comment_posts=sum(c.method == "POST" and c.path == f"/repos/{REPO}/issues/{pull.number}/comments" for c in ok),
        comment_patches=sum(c.method == "PATCH" and c.path in comment_ids for c in ok),
        run_posts=sum(
            c.method == "POST"
            and c.path == f"/repos/{REPO}/check-runs"
            and (c.json_body or {}).get("head_sha") == pull.head_sha
            for c in ok
        ),
        run_patches=sum(c.method == "PATCH" and c.path in run_ids for c in ok),
    )


def comments_show(github: FakeGitHub, scenario: Scenario) -> bool:
    """Every PR has its one comment and it shows the expected total and the approval."""
    for pull in scenario.pulls:
        comments = bot_comments(github, pull.number)
        if len(comments) != 1:
            return False
        body = comments[0]["body"]
        if scenario.headline(pull.number) not in body or "approved by" not in body:
            return False
    return True


def check_one_comment_and_one_check_run_each(github: FakeGitHub, scenario: Scenario) -> None:
    for pull in scenario.pulls:
        comments = bot_comments(github, pull.number)
        assert len(comments) == 1, (pull.number, comments)
        assert scenario.headline(pull.number) in comments[0]["body"], (pull.number, comments[0]["body"][:300])
        assert len(github.comments(REPO, pull.number)) == 1
        runs = github.check_runs(REPO, pull.head_sha)
        assert [run["name"] for run in runs] == ["AI spend"], (pull.number, runs)
        writes = writes_to(github, pull)
        assert writes.comment_posts == 1 and writes.run_posts == 1, (pull.number, writes)


class SlowFakeGitHub(FakeGitHub):
    """The fake GitHub, able to answer some requests slowly (after having done what they ask), like a GitHub that
    is slow to respond: `delay("POST", "/repos/*/issues/*/comments", 3)`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._delays: list[tuple[str, str, float]] = []

    def delay(self, method: str, path_pattern: str, seconds: float) -> None:
        with self._lock:
            self._delays.append((method.upper(), path_pattern, seconds))

    def clear_delays(self) -> None:
        with self._lock:
            self._delays.clear()

    def clear_faults(self) -> None:
        """GitHub recovers: the errors still planned by `fail_next` are dropped."""
        with self._lock:
            self._faults.clear()

    def handle(
        self, method: str, raw_path: str, query: dict[str, str], raw: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        answer = super().handle(method, raw_path, query, raw, headers)
        path = unquote(raw_path)
        with self._lock:
            pause = max(
                (s for m, p, s in self._delays if m in (method, "*") and fnmatch.fnmatchcase(path, p)), default=0
            )
        if pause:
            time.sleep(pause)  # outside the lock: other requests go on
        return answer


# -- the database, as the tests read it -------------------------------------------------------------------------------


class Db:
    """Read-only looks at the server's database (and one deliberate clock shift: `expire`)."""

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def job_states(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)).all()
        return {state: int(count) for state, count in rows}

    def pending_jobs(self) -> int:
        states = self.job_states()
        return states.get("queued", 0) + states.get("running", 0)

    def failed_jobs(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(JOBS).where(JOBS.c.state == "failed")).all())

    def jobs(self, kind: str | None = None) -> list[Any]:
        query = sa.select(JOBS).order_by(JOBS.c.id)
        if kind is not None:
            query = query.where(JOBS.c.kind == kind)
        with self.engine.connect() as connection:
            return list(connection.execute(query).all())

    def record_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            return [record_id for (record_id,) in connection.execute(sa.select(USAGE.c.record_id))]

    def usage_count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one())

    def expire(self, *, leases: bool = False) -> int:
        """Advance the clock for the jobs: queued jobs become due now; with `leases`, the lease of every running
        job has run out (what a worker restarted after a crash sees once the lease time has passed)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        changed = 0
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(JOBS).where(JOBS.c.state == "queued", JOBS.c.run_after > past).values(run_after=past)
            )
            changed += result.rowcount
            if leases:
                result = connection.execute(sa.update(JOBS).where(JOBS.c.state == "running").values(locked_at=long_ago))
                changed += result.rowcount
        return changed


# -- processes --------------------------------------------------------------------------------------------------------


def app_env(github: FakeGitHub, private_key: str, **extra: str) -> dict[str, str]:
    """Environment of a server or worker in GitHub App mode against the fake."""
    return {
        "TOKENTRAIL_GITHUB_APP_ID": str(APP_ID),
        "TOKENTRAIL_GITHUB_PRIVATE_KEY": private_key,
        "TOKENTRAIL_GITHUB_API_URL": github.url,
        "TOKENTRAIL_PUBLIC_URL": "https://tokentrail.example.com",
        **extra,
    }


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_worker(*, database_url: str, log: Path, env: dict[str, str]) -> WorkerProcess:
    """`tokentrail worker` in a subprocess, waited on until it says it runs."""
    environment = {
        **os.environ,
        "TOKENTRAIL_DATABASE_URL": database_url,
        "TOKENTRAIL_GITHUB_WEBHOOK_SECRET": "test-secret",
        "TOKENTRAIL_COMMENT_DEBOUNCE_SECONDS": "0",
        **env,
    }
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, log)

    def running() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{log.read_text()}")
        return "worker running" in log.read_text(errors="replace")

    try:
        wait_for(running, what="the worker to start", timeout=30)
    except BaseException:
        worker.stop()
        raise
    return worker


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
