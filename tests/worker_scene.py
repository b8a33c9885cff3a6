"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.attribution import Attribution
from app.db import utcnow
from app.jobs import record_delivery
from app.main import build_worker
from app.records import UsageRecord
from app.render import MARKER
from app.settings import Settings
from app.store import store_usage
from app.tables import JOBS, PULLS, USAGE
from app.worker import Worker
from tests.fake_github import FakeGitHub

PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "github"


APP_ID = 4321


INSTALLATION = 77


REPO = "acme/widgets"


BRANCH = "feat/cache"


HEAD = "a1" * 20


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # when the first pull request is opened


CONFIG = ".github/tokentrail.yml"


BUDGET_10 = "budget:\n  max_cost_per_pr: 10\n  warn_at: 0.8\n"


@cache
def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    repository: dict[str, Any] = copy.deepcopy(_payload("pull_request.opened.payload.json")["repository"])
    repository.update(full_name=full_name, name=name, default_branch="main", fork=full_name != REPO)
    repository["owner"] = {**repository["owner"], "login": owner}
    return repository


def make_pull_request_payload(
    action: str = "opened",
    *,
    number: int = 12,
    head_ref: str = BRANCH,
    head_sha: str = HEAD,
    head_repo: str = REPO,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
    closed_at: datetime | None = None,
    merged: bool = False,
    labels: tuple[str, ...] = (),
    additions: int = 120,
    deletions: int = 30,
    changed_files: int = 4,
    before: str | None = None,
) -> dict[str, Any]:
    """octokit's pull_request.opened example, moved to acme/widgets and changed only where a scenario needs it."""
    payload = copy.deepcopy(_payload("pull_request.opened.payload.json"))
    payload.update(action=action, number=number, repository=_repository(REPO))
    payload["installation"] = {**payload["installation"], "id": INSTALLATION}
    if before is not None:
        payload.update(before=before, after=head_sha)
    pull = payload["pull_request"]
    pull.update(
        number=number,
        title=f"Change #{number}",
        state="closed" if closed_at else "open",
        created_at=_iso(created_at),
        updated_at=_iso(updated_at or closed_at or created_at),
        closed_at=_iso(closed_at),
        merged_at=_iso(closed_at) if merged else None,
        merged=merged,
        additions=additions,
        deletions=deletions,
        changed_files=changed_files,
        labels=[{"id": i, "name": name, "color": "ededed", "default": False} for i, name in enumerate(labels)],
        html_url=f"https://github.com/{REPO}/pull/{number}",
    )
    pull["user"] = {**pull["user"], "login": "alice"}
    pull["head"] = {**pull["head"], "ref": head_ref, "sha": head_sha, "repo": _repository(head_repo)}
    pull["base"] = {**pull["base"], "ref": "main", "repo": _repository(REPO)}
    return payload


def make_review_payload(
    pull_payload: dict[str, Any], *, review_id: int, reviewer: str, state: str, submitted_at: datetime
) -> dict[str, Any]:
    """octokit's pull_request_review.submitted example; its PR object is the simple one (no diff counts)."""
    payload = copy.deepcopy(_payload("pull_request_review.submitted.payload.json"))
    payload.update(repository=pull_payload["repository"], installation=pull_payload["installation"])
    payload["pull_request"] = {
        key: value
        for key, value in pull_payload["pull_request"].items()
        if key not in {"additions", "deletions", "changed_files", "merged", "commits"}
    }
    review = payload["review"]
    review.update(id=review_id, state=state, submitted_at=_iso(submitted_at))
    review["user"] = {**review["user"], "login": reviewer}
    return payload


def make_push_payload(*, ref: str, before: str, after: str, at: datetime) -> dict[str, Any]:
    """octokit's push.with-new-branch example, as a push of one commit to `ref` of acme/widgets."""
    payload = copy.deepcopy(_payload("push.with-new-branch.payload.json"))
    commit = {**payload["head_commit"], "id": after, "timestamp": _iso(at)}
    payload.update(ref=ref, before=before, after=after, created=False, commits=[commit], head_commit=commit)
    payload.update(repository=_repository(REPO), installation={**payload["installation"], "id": INSTALLATION})
    return payload


def make_record(
    record_id: str,
    cost: str = "1.00",
    *,
    at: datetime = T0,
    repo: str = REPO,
    branch: str | None = BRANCH,
    commit: str | None = None,
    pr: int | None = None,
    session: str | None = None,
) -> UsageRecord:
    """A record of its own session unless `session` says otherwise (so rule 5 places nothing by accident)."""
    return UsageRecord(
        id=record_id,
        source="api",
        timestamp=at,
        model="claude-sonnet-4-5",
        provider="anthropic",
        input_tokens=1200,
        cache_read_tokens=5000,
        output_tokens=300,
        cost_usd=Decimal(cost),
        attribution=Attribution(repo=repo, branch=branch, commit=commit, pr=pr),
        actor="alice",
        agent="claude-code",
        session_id=session or f"session-{record_id}",
    )


def usd(value: Decimal) -> str:
    """How the comment prints an amount of a dollar or more."""
    return f"${value.quantize(Decimal('0.01')):,}"


def total(*records: UsageRecord) -> Decimal:
    return sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))


def headline(*records: UsageRecord) -> str:
    return f"AI spend on this pull request: **{usd(total(*records))}**"


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    """(private PEM, public PEM) of the app's RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


@pytest.fixture
def fake(keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=APP_ID, public_key=keys[1], strict_tokens=True) as fake:
        fake.add_installation(INSTALLATION, "acme")
        fake.add_repo(REPO, default_branch="main", installation_id=INSTALLATION)
        yield fake


def make_settings(database_url: str, fake: FakeGitHub, private_key: str | None) -> Settings:
    """App mode with the app's key; dry-run (no App credentials) without one."""
    return Settings(
        database_url=database_url,
        github_app_id=APP_ID if private_key else None,
        github_private_key=SecretStr(private_key) if private_key else None,
        github_api_url=AnyHttpUrl(fake.url),
        github_webhook_secret=SecretStr("test-secret"),
        comment_debounce_seconds=0,
    )


@dataclass
class Scene:
    fake: FakeGitHub
    factory: sessionmaker[Session]
    worker: Worker
    deliveries: list[tuple[str, str, str | None, bytes]] = field(default_factory=list)
    batches: list[list[UsageRecord]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        delivery = (f"delivery-{next(self._ids)}", event, payload.get("action"), json.dumps(payload).encode())
        assert record_delivery(self.factory, delivery_id=delivery[0], event=event, action=delivery[2], body=delivery[3])
        self.deliveries.append(delivery)

    def send_usage(self, *records: UsageRecord) -> None:
        written = store_usage(self.factory, records=list(records), owner="acme")
        assert written.accepted == len(records)
        self.batches.append(list(records))

    def run(self) -> int:
        return self.worker.run_until_idle()

    def open_pull(self, number: int = 12, *, commits: list[str] | None = None, **facts: Any) -> dict[str, Any]:
        """The PR on the fake (GitHub's truth) and its `opened` delivery, from the same facts."""
        payload = make_pull_request_payload(number=number, **facts)
        pull, head = payload["pull_request"], payload["pull_request"]["head"]
        self.fake.add_pull(
            REPO, number, title=pull["title"], user="alice", head_ref=head["ref"], head_sha=head["sha"],
            head_repo=head["repo"]["full_name"], additions=pull["additions"], deletions=pull["deletions"],
            changed_files=pull["changed_files"], created_at=pull["created_at"],
        )  # fmt: skip
        if commits is not None:
            self.fake.set_pull_commits(REPO, number, commits)
        self.deliver("pull_request", payload)
        return payload

    def close_pull(self, number: int, *, merged: bool, at: datetime, **facts: Any) -> None:
        merged_at = at if merged else None
        self.fake.update_pull(REPO, number, state="closed", merged=merged, closed_at=at, merged_at=merged_at)
        self.deliver(
            "pull_request", make_pull_request_payload("closed", number=number, closed_at=at, merged=merged, **facts)
        )

    def review(self, pull_payload: dict[str, Any], reviewer: str, state: str, at: datetime) -> None:
        number = pull_payload["number"]
        review_id = self.fake.add_review(REPO, number, reviewer, state, submitted_at=at)
        self.deliver(
            "pull_request_review",
            make_review_payload(pull_payload, review_id=review_id, reviewer=reviewer, state=state, submitted_at=at),
        )

    def bot_comments(self, number: int = 12) -> list[dict[str, Any]]:
        return [c for c in self.fake.comments(REPO, number) if c["user"]["login"] == self.fake.bot_login]

    def comment(self, number: int = 12) -> dict[str, Any]:
        comments = self.bot_comments(number)
        assert len(comments) == 1, [c["body"][:80] for c in comments]
        assert comments[0]["body"].startswith(MARKER)
        return comments[0]

    def check_run(self, sha: str = HEAD) -> dict[str, Any]:
        runs = self.fake.check_runs(REPO, sha)
        assert [run["name"] for run in runs] == ["AI spend"]
        return runs[0]

    def writes(self) -> list[tuple[str, str, int]]:
        """Every write to GitHub so far: comment and check-run POSTs and PATCHes."""
        return [
            (c.method, c.path, c.status)
            for c in self.fake.calls
            if c.method in {"POST", "PATCH"} and ("/comments" in c.path or "/check-runs" in c.path)
        ]

    def matches(self) -> dict[str, tuple[str | None, int | None, str | None]]:
        with self.factory() as session:
            rows = session.execute(sa.select(USAGE.c.record_id, USAGE.c.pr_repo, USAGE.c.pr_number, USAGE.c.match_rule))
            return {row.record_id: (row.pr_repo, row.pr_number, row.match_rule) for row in rows}

    def pull_row(self, number: int = 12) -> Any:
        with self.factory() as session:
            return session.execute(sa.select(PULLS).where(PULLS.c.repo == REPO, PULLS.c.number == number)).one()

    def refresh_job(self, number: int = 12) -> Any:
        with self.factory() as session:
            query = sa.select(JOBS).where(JOBS.c.kind == "refresh", JOBS.c.key == f"{REPO}#{number}")
            return session.execute(query.order_by(JOBS.c.id.desc())).first()

    def make_queued_jobs_due(self) -> None:
        """Instead of waiting out a backoff: every queued job becomes due now."""
        with self.factory() as session, session.begin():
            past = utcnow() - timedelta(seconds=1)
            session.execute(sa.update(JOBS).where(JOBS.c.state == "queued").values(run_after=past))


@pytest.fixture
def scene(database_url: str, factory: sessionmaker[Session], fake: FakeGitHub, keys: tuple[str, str]) -> Scene:
    worker = build_worker(make_settings(database_url, fake, keys[0]), factory)
    assert worker.publisher.github is not None
    return Scene(fake=fake, factory=factory, worker=worker)
