"""The worker: claims jobs from the outbox and runs them. In-process under `tokentrail serve`, or alone as
`tokentrail worker` (several of them on PostgreSQL: claims use FOR UPDATE SKIP LOCKED).

Job kinds:
- `webhook` (key: delivery id): store what the event says of GitHub (app.apply_event), queue refreshes;
- `match` (key: repository): match usage that arrived since the last run;
- `refresh` (key: "owner/name#number"): the whole life of a PR refresh, top to bottom in `handle_refresh`.
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

from app import jobs, metrics, partitions, repo_state
from app.apply_event import apply_event
from app.db import utcnow
from app.events import Ignored, parse_event
from app.facts import gather_facts
from app.github import GitHubError
from app.heartbeat import Heartbeat
from app.people_view import visible_report
from app.plan import plan_publish
from app.publish import Publisher, apply, posted, rendered_values
from app.pull_rollup import refresh_if_stale
from app.rematch import PullKey, match_pending, rematch_pulls
from app.render import render
from app.report import build_report
from app.settings import Settings
from app.sync import sync_pull

log = logging.getLogger("tokentrail.worker")


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
        except Exception as error:  # the job boundary: record what went wrong; retry only what may pass later
            message = f"{type(error).__name__}: {error}"
            with self.factory() as session, session.begin():
                if is_transient(error):
                    log.warning("job %s %s failed, will be retried: %s", job.kind, job.key, message)
                    metrics.JOBS_RUN.inc(job.kind, "retry")
                    # GitHub may say when to come back (rate limits: Retry-After).
                    jobs.retry(session, job, error=message, retry_after=getattr(error, "retry_after", None))
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
        next_purge = next_partitions = 0.0
        while not stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()
            try:
                if time.monotonic() > next_purge:
                    with self.factory() as session, session.begin():
                        jobs.purge_done(session)
                    next_purge = time.monotonic() + 600
                if time.monotonic() > next_partitions:  # at start, then daily: next months' partitions of usage
                    with self.factory() as session, session.begin():
                        partitions.ensure_ahead(session.connection())
                    next_partitions = time.monotonic() + 86_400
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
        """One PR refresh, top to bottom: sync (App mode) -> re-match (once, when facts changed) -> gather facts ->
        build the report -> render -> plan -> apply (App mode) -> store what was rendered and posted."""
        repo, number = parse_pull_key(key)
        pull = repo_state.get_pull(session, repo=repo, number=number, lock=True)
        if pull is None:
            return
        port = self.publisher.port(installation_id=repo_state.installation_of(session, repo), repo=repo, number=number)
        synced = sync_pull(session, port, pull=pull) if port is not None else False
        if synced or pull.rematch_pending:
            self.queue_refresh(
                session, rematch_pulls(session, keys={(repo, number)}, grace=self.grace) - {(repo, number)}
            )
        refresh_if_stale(session, repo=repo, number=number)  # a push moved the split between pushes
        facts = gather_facts(session, repo=repo, number=number, public_url=str(self.settings.public_url))
        report = visible_report(build_report(facts), self.settings.dashboard_people)
        rendered = render(report)
        plan = plan_publish(report, rendered, posted(pull))
        values = {} if plan.stale else rendered_values(report, rendered)  # stale: a newer state is already out
        if port is not None and not plan.stale:
            values |= apply(plan, port, body=rendered.body, generated_at=report.generated_at)
        repo_state.save_published(session, pull_id=pull.id, values=values)

    def handle_webhook(self, session: Session, delivery_id: str) -> None:
        stored = jobs.load_delivery(session, delivery_id)
        if stored is None:
            return
        try:
            event = parse_event(stored[0], json.loads(stored[1]), now=utcnow())
        except (Ignored, json.JSONDecodeError):
            return
        refreshes = apply_event(session, event, grace=self.grace)
        self.queue_refresh(session, refreshes.later)
        self.queue_refresh(session, refreshes.now, delay=0)
