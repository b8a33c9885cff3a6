"""Refresh one pull request: sync its facts from GitHub (App mode), build and render the report, then edit the
one sticky comment and the "AI spend" check run — or, in dry-run mode, only store what would be posted."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import people, repo_state
from app.budget import conclusion_for
from app.db import as_utc
from app.events import Ignored, PullCommit, parse_pull
from app.facts import gather_facts
from app.github import GitHubError, NotFound
from app.money import to_nanousd
from app.rematch import rematch_pulls
from app.render import parse_comment_state, render_check_run, render_comment
from app.repo_state import PULLS
from app.report import PullRequestReport, build_report
from app.settings import Settings

log = logging.getLogger("tokentrail.publish")
CONFIG_PATH = ".github/tokentrail.yml"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_REVIEW_STATES = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
    "DISMISSED": "dismissed",
}


class RetryLater(Exception):
    """GitHub is unavailable or rate limiting: the job goes back to the queue (after `retry_after` seconds)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubPort(Protocol):
    """The verbs the publisher needs (app.github.GitHubApp; tests may pass a fake speaking HTTP behind it)."""

    def get_pull(self, installation_id: int, repo: str, number: int) -> dict[str, Any]: ...
    def list_pull_commits(self, installation_id: int, repo: str, number: int) -> list[PullCommit]: ...
    def list_reviews(self, installation_id: int, repo: str, number: int) -> list[dict[str, Any]]: ...
    def get_file(self, installation_id: int, repo: str, path: str, *, ref: str) -> str | None: ...
    def find_comment(self, installation_id: int, repo: str, number: int) -> tuple[int, str] | None: ...
    def create_comment(self, installation_id: int, repo: str, number: int, body: str) -> int: ...
    def update_comment(self, installation_id: int, repo: str, comment_id: int, body: str) -> None: ...
    def upsert_check_run(
        self,
        installation_id: int,
        repo: str,
        *,
        check_run_id: int | None,
        head_sha: str,
        output: dict[str, str],
        conclusion: str,
    ) -> int: ...


def comment_digest(report: PullRequestReport) -> str:
    """The comment as it would read at a fixed time: equal digests mean the figures did not change."""
    timeless = replace(report, generated_at=_EPOCH)
    return hashlib.sha256(render_comment(timeless).encode()).hexdigest()


@dataclass
class Publisher:
    settings: Settings
    github: GitHubPort | None  # None in dry-run mode: nothing is sent

    def refresh(self, session: Session, *, repo: str, number: int, grace: timedelta) -> None:
        query = sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()  # one refresh of a PR at a time, whatever the number of workers
        if session.execute(query).first() is None:
            return
        installation_id = repo_state.installation_of(session, repo)
        live = self.github is not None and installation_id is not None
        if live:
            assert self.github is not None and installation_id is not None
            try:
                self._sync(session, self.github, installation_id=installation_id, repo=repo, number=number, grace=grace)
            except GitHubError as error:
                self._raise_retry(error)
        facts = gather_facts(session, repo=repo, number=number, public_url=str(self.settings.public_url))
        report = build_report(facts)
        pull = session.execute(sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)).one()
        if pull.comment_generated_at is not None and as_utc(pull.comment_generated_at) > report.generated_at:
            return  # a newer state was already published
        body = render_comment(report)
        digest = comment_digest(report)
        check = render_check_run(report)
        values: dict[str, Any] = {
            "spend_nanousd": to_nanousd(report.totals.cost_usd) or 0,
            "spend_records": report.totals.records,
            "comment_body": body,
            "comment_digest": digest,
            "comment_generated_at": report.generated_at,
            "check_title": check.title,
            "check_summary": check.summary,
            "check_conclusion": check.conclusion,
        }
        if live:
            assert self.github is not None and installation_id is not None
            try:
                values |= self._post(
                    self.github, installation_id, pull=pull, report=report, body=body, digest=digest, check=check
                )
            except GitHubError as error:
                self._raise_retry(error)
        session.execute(sa.update(PULLS).where(PULLS.c.id == pull.id).values(**values))

    @staticmethod
    def _raise_retry(error: GitHubError) -> None:
        if error.retryable:
            raise RetryLater(str(error), retry_after=error.retry_after) from error
        raise error

    def _sync(
        self, session: Session, github: GitHubPort, *, installation_id: int, repo: str, number: int, grace: timedelta
    ) -> None:
        """GitHub's current facts: the PR (with its diff size), its commits, its reviews, the repo config."""
        before = session.execute(sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)).one()
        # Every GitHub read first, every database write after: on SQLite the first write takes the database's
        # only write lock, which should not be held while waiting on the network.
        try:
            snapshot = parse_pull(github.get_pull(installation_id, repo, number), repo=repo)
        except Ignored as ignored:
            raise GitHubError(f"unreadable pull request: {ignored.reason}", retryable=False) from None
        pull_commits = github.list_pull_commits(installation_id, repo, number)
        commits = [commit.sha for commit in pull_commits]
        reviews = github.list_reviews(installation_id, repo, number)
        config = self._fetch_config(session, github, installation_id=installation_id, repo=repo)

        newer = repo_state.upsert_pull(session, snapshot)
        new_commits = repo_state.add_commits(session, repo=repo, number=number, shas=[*commits, snapshot.head_sha])
        people.record_people(session, owner=repo.split("/")[0], authors=[commit.author for commit in pull_commits])
        for review in reviews:
            state = _REVIEW_STATES.get(str(review.get("state", "")).upper())
            login = (review.get("user") or {}).get("login")
            if state is None or not isinstance(login, str) or not isinstance(review.get("id"), int):
                continue  # PENDING reviews are the reviewer's draft
            submitted = review.get("submitted_at")
            repo_state.upsert_review(
                session,
                repo=repo,
                number=number,
                review_id=review["id"],
                reviewer=login.lower(),
                state=state,
                submitted_at=datetime.fromisoformat(submitted.replace("Z", "+00:00"))
                if submitted
                else before.created_at,
            )
        if config is not None:
            session.execute(
                sa.update(repo_state.REPOSITORIES)
                .where(repo_state.REPOSITORIES.c.full_name == repo)
                .values(config_text=config[0], config_fetched=True)
            )
        closed_at = None if before.closed_at is None else as_utc(before.closed_at)
        if new_commits or (newer and (snapshot.state, snapshot.closed_at) != (before.state, closed_at)):
            rematch_pulls(session, keys={(repo, number)}, grace=grace)

    def _fetch_config(
        self, session: Session, github: GitHubPort, *, installation_id: int, repo: str
    ) -> tuple[str | None] | None:
        """.github/tokentrail.yml from the default branch when the cached copy is stale (a push moved the branch):
        `(text,)` (text None when the file does not exist), or None when the cache is current."""
        row = session.execute(
            sa.select(repo_state.REPOSITORIES).where(repo_state.REPOSITORIES.c.full_name == repo)
        ).first()
        if row is None or row.config_fetched:
            return None
        return (github.get_file(installation_id, repo, CONFIG_PATH, ref=row.default_branch),)

    def _post(
        self,
        github: GitHubPort,
        installation_id: int,
        *,
        pull: Any,
        report: PullRequestReport,
        body: str,
        digest: str,
        check: Any,
    ) -> dict[str, Any]:
        repo, number = pull.repo, pull.number
        values: dict[str, Any] = {}
        config = report.config.config
        wanted = report.is_comment_wanted or pull.comment_id is not None
        if config.comment.behavior != "off" and wanted and digest != pull.comment_digest:
            values["comment_id"] = self._post_comment(
                github,
                installation_id,
                repo=repo,
                number=number,
                body=body,
                known_id=pull.comment_id,
                behavior=config.comment.behavior,
                generated_at=report.generated_at,
            )
        if config.check_run and report.pr.head_sha:
            same_sha = pull.check_run_sha == report.pr.head_sha
            # The summary shows when it was generated: compare with this report rendered as of the stored one,
            # so a refresh that changed no figure does not edit the check run just to move "updated …".
            shown = check
            if same_sha and pull.comment_generated_at is not None:
                shown = render_check_run(replace(report, generated_at=as_utc(pull.comment_generated_at)))
            unchanged = same_sha and (pull.check_title, pull.check_summary, pull.check_conclusion) == (
                shown.title,
                shown.summary,
                shown.conclusion,
            )
            if not unchanged:
                output = {"title": check.title[:255], "summary": check.summary}
                values["check_run_id"] = github.upsert_check_run(
                    installation_id,
                    repo,
                    check_run_id=pull.check_run_id if same_sha else None,
                    head_sha=report.pr.head_sha,
                    output=output,
                    conclusion=conclusion_for(report.budget.status),
                )
                values["check_run_sha"] = report.pr.head_sha
        return values

    def _post_comment(
        self,
        github: GitHubPort,
        installation_id: int,
        *,
        repo: str,
        number: int,
        body: str,
        known_id: int | None,
        behavior: str,
        generated_at: datetime,
    ) -> int:
        if behavior == "new":
            return github.create_comment(installation_id, repo, number, body)
        if known_id is not None:
            try:
                github.update_comment(installation_id, repo, known_id, body)
                return known_id
            except NotFound:
                pass  # deleted by someone: look for another of ours, else create one
        existing = github.find_comment(installation_id, repo, number)
        if existing is None:
            return github.create_comment(installation_id, repo, number, body)
        comment_id, current = existing
        state = parse_comment_state(current)
        if state is not None and state[1] > generated_at:
            return comment_id  # that comment shows a newer state than ours: never overwrite it
        github.update_comment(installation_id, repo, comment_id, body)
        return comment_id
