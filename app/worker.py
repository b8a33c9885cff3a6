"""The worker: claims jobs from the outbox and runs them. In-process under `tokentrail serve`, or alone as
`tokentrail worker` (several of them on PostgreSQL: claims use FOR UPDATE SKIP LOCKED).

Job kinds:
- `webhook` (key: delivery id): apply the event to the stored GitHub state, re-match, queue refreshes;
- `match` (key: repository): match usage that arrived since the last run;
- `refresh` (key: "owner/name#number"): recompute one PR's report, then comment and check run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import jobs, metrics, people, repo_state
from app.events import (
    CheckRerequest,
    Ignored,
    InstallationEvent,
    PullRequestEvent,
    PullRequestSnapshot,
    PushEvent,
    ReviewEvent,
    parse_event,
)
from app.github import GitHubError
from app.heartbeat import Heartbeat
from app.models import Delivery
from app.publish import Publisher, RetryLater
from app.rematch import PullKey, match_pending, rematch_pulls
from app.repo_state import PULLS
from app.settings import Settings

log = logging.getLogger("tokentrail.worker")
DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]


def is_transient(error: BaseException) -> bool:
    """Whether a failed job may pass when run again: the database or GitHub was away or busy, or two workers
    raced on the same row. Anything else (a value no column holds, a bug) fails the same way every time."""
    if isinstance(error, GitHubError):
        return error.retryable
    transient_db = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sa.exc.IntegrityError)
    if isinstance(error, transient_db):
        return True
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OSError | TimeoutError)


def pull_key(repo: str, number: int) -> str:
    return f"{repo}#{number}"


def parse_pull_key(key: str) -> tuple[str, int]:
    repo, _, number = key.rpartition("#")
    return repo, int(number)


@dataclass
class Worker:
    factory: sessionmaker[Session]
    settings: Settings
    publisher: Publisher
    heartbeat: Heartbeat | None = None  # beaten by run_forever, read by `tokentrail healthcheck`

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.late_usage_grace_seconds)

    def queue_refresh(self, session: Session, pulls: set[PullKey], *, delay: float | None = None) -> None:
        debounce = self.settings.comment_debounce_seconds if delay is None else delay
        for repo, number in sorted(pulls):
            jobs.enqueue(session, kind="refresh", key=pull_key(repo, number), delay=debounce)

    # -- the loop -------------------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Run the next due job, if any; True when one ran (whatever its outcome)."""
        with self.factory() as session, session.begin():
            job = jobs.claim(session)
        if job is None:
            return False
        handler = self._handlers().get(job.kind)
        try:
            if handler is None:
                raise ValueError(f"unknown job kind {job.kind!r}")
            with self.factory() as session, session.begin():
                handler(session, job.key)
                jobs.finish(session, job)
            metrics.JOBS_RUN.inc(job.kind, "done")
        except RetryLater as later:
            log.warning("job %s %s will be retried: %s", job.kind, job.key, later)
            metrics.JOBS_RUN.inc(job.kind, "retry")
            with self.factory() as session, session.begin():
                jobs.retry(session, job, error=str(later), retry_after=later.retry_after)
        except Exception as error:  # the job boundary: record what went wrong; retry only what may pass later
            message = f"{type(error).__name__}: {error}"
            with self.factory() as session, session.begin():
                if is_transient(error):
                    log.exception("job %s %s failed, will be retried", job.kind, job.key)
                    metrics.JOBS_RUN.inc(job.kind, "error")
                    jobs.retry(session, job, error=message)
                else:
                    log.exception("job %s %s failed for good (dead letter)", job.kind, job.key)
                    metrics.JOBS_RUN.inc(job.kind, "dead")
                    jobs.fail(session, job, error=message)
        return True

    def run_until_idle(self, *, max_jobs: int = 10_000) -> int:
        """Run every due job (tests and the demo use it); returns how many ran."""
        ran = 0
        while ran < max_jobs and self.run_once():
            ran += 1
        return ran

    def run_forever(self, stop: threading.Event, wake: threading.Event) -> None:
        next_purge = 0.0
        while not stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()
            try:
                if time.monotonic() > next_purge:
                    with self.factory() as session, session.begin():
                        jobs.purge_done(session)
                    next_purge = time.monotonic() + 600
                if self.run_once():
                    continue
                with self.factory() as session:
                    due_in = jobs.next_due_in(session)
            except Exception:  # the database is away: keep the worker alive and try again soon
                log.exception("worker loop error")
                due_in = 5.0
            wake.wait(timeout=min(due_in if due_in is not None else 5.0, 5.0))
            wake.clear()
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def _handlers(self) -> dict[str, Callable[[Session, str], None]]:
        return {"webhook": self.handle_webhook, "match": self.handle_match, "refresh": self.handle_refresh}

    # -- handlers --------------------------------------------------------------------------------------------

    def handle_match(self, session: Session, repo: str) -> None:
        touched, more = match_pending(session, repo=repo, grace=self.grace)
        self.queue_refresh(session, touched)
        if more:
            jobs.enqueue(session, kind="match", key=repo)

    def handle_refresh(self, session: Session, key: str) -> None:
        repo, number = parse_pull_key(key)
        self.publisher.refresh(session, repo=repo, number=number, grace=self.grace)

    def handle_webhook(self, session: Session, delivery_id: str) -> None:
        row = session.execute(sa.select(DELIVERIES).where(DELIVERIES.c.delivery_id == delivery_id)).first()
        if row is None:
            return
        try:
            event = parse_event(row.event, json.loads(row.payload))
        except (Ignored, json.JSONDecodeError):
            return
        if isinstance(event, InstallationEvent):
            repo_state.apply_installation(session, event)
        elif isinstance(event, PullRequestEvent):
            self._on_pull_request(session, event)
        elif isinstance(event, ReviewEvent):
            self._on_review(session, event)
        elif isinstance(event, PushEvent):
            self._on_push(session, event)
        else:
            self._on_check_rerequest(session, event)

    def _record_pull(self, session: Session, pull: PullRequestSnapshot, *, moved: list[tuple[str, str]]) -> None:
        """Store a PR snapshot (unless GitHub's stored facts are newer), keep its head among its commits, and
        re-match what that can move; its comment is refreshed either way."""
        repo_state.upsert_pull(session, pull)
        repo_state.add_commits(session, repo=pull.repo, number=pull.number, shas=[pull.head_sha])
        key = (pull.repo, pull.number)
        touched = rematch_pulls(session, keys={key}, grace=self.grace, moved_default_branches=moved)
        self.queue_refresh(session, touched | {key})

    def _on_pull_request(self, session: Session, event: PullRequestEvent) -> None:
        pull = event.pull
        moved = repo_state.upsert_repository(
            session,
            repo=pull.repo,
            installation_id=event.installation_id,
            default_branch=event.default_branch,
            repository_id=event.repository_id,
            owner_id=event.owner_id,
        )
        if event.action in {"opened", "reopened", "synchronize", "ready_for_review", "closed"}:
            # Each head the PR had, at the time GitHub says it became the head: the bounds of "cost between pushes".
            at = pull.created_at if event.action in {"opened", "reopened"} else pull.updated_at or pull.created_at
            repo_state.add_push(session, repo=pull.repo, number=pull.number, sha=pull.head_sha, at=at)
        self._record_pull(session, pull, moved=moved)

    def _on_review(self, session: Session, event: ReviewEvent) -> None:
        pull = event.pull
        moved = repo_state.upsert_repository(
            session,
            repo=pull.repo,
            installation_id=event.installation_id,
            default_branch=event.default_branch,
            repository_id=event.repository_id,
            owner_id=event.owner_id,
        )
        repo_state.upsert_review(
            session,
            repo=pull.repo,
            number=pull.number,
            review_id=event.review_id,
            reviewer=event.reviewer,
            state=event.state,
            submitted_at=event.submitted_at,
        )
        self._record_pull(session, pull, moved=moved)

    def _on_push(self, session: Session, event: PushEvent) -> None:
        moved = repo_state.upsert_repository(
            session,
            repo=event.repo,
            installation_id=event.installation_id,
            default_branch=event.default_branch,
            repository_id=event.repository_id,
            owner_id=event.owner_id,
        )
        people.record_people(session, owner=event.repo.split("/")[0], authors=event.authors)
        if moved:
            self.queue_refresh(
                session, rematch_pulls(session, keys=set(), grace=self.grace, moved_default_branches=moved)
            )
        if event.branch == event.default_branch:
            # The budget is read from the default branch: a push there may change it for every open PR.
            session.execute(
                sa.update(repo_state.REPOSITORIES)
                .where(repo_state.REPOSITORIES.c.full_name == event.repo)
                .values(config_fetched=False, default_branch_sha=event.after)
            )
            open_pulls = session.execute(
                sa.select(PULLS.c.repo, PULLS.c.number).where(PULLS.c.repo == event.repo, PULLS.c.state == "open")
            ).all()
            self.queue_refresh(session, {(r, n) for r, n in open_pulls})
            return
        if event.deleted:
            return
        pulls = set(repo_state.open_pulls_of_branch(session, head_repo=event.repo, head_ref=event.branch))
        for repo, number in pulls:
            repo_state.add_commits(session, repo=repo, number=number, shas=[*event.commits, event.after])
            if event.after:
                repo_state.add_push(session, repo=repo, number=number, sha=event.after, at=event.pushed_at)
        if pulls:
            self.queue_refresh(session, rematch_pulls(session, keys=pulls, grace=self.grace) | pulls)

    def _on_check_rerequest(self, session: Session, event: CheckRerequest) -> None:
        numbers = set(event.numbers)
        if not numbers and event.head_sha:
            rows = session.execute(
                sa.select(PULLS.c.number).where(PULLS.c.repo == event.repo, PULLS.c.head_sha == event.head_sha)
            )
            numbers = {number for (number,) in rows}
        self.queue_refresh(session, {(event.repo, n) for n in numbers}, delay=0)
