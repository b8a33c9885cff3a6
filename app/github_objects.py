"""GitHub's objects as Tokentrail reads them, from webhooks and from the REST API alike: a pull request, its
commits and their authors, its reviews. Pure.

Read defensively (see app.events): a value that does not fit its column makes the object `Ignored` with the field
named, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.outcomes import reverted_pull_number
from app.parsing import dig
from app.webhook_fields import (
    LOGIN_CHARS,
    MAX_NUMBER,
    REF_CHARS,
    URL_CHARS,
    Ignored,
    fits,
    full_name,
    github_id,
    integer,
    items,
    moment,
    ranged,
    sha,
    text,
)

# A review's verdict, as the REST API spells it (upper case) and webhooks too (lower case): what Tokentrail keeps.
REVIEW_STATES = {
    "approved": "approved",
    "changes_requested": "changes_requested",
    "commented": "commented",
    "dismissed": "dismissed",
}


@dataclass(frozen=True, slots=True)
class PullRequestSnapshot:
    repo: str
    number: int
    title: str
    author: str
    state: str  # open | closed
    merged: bool
    draft: bool
    head_repo: str | None  # None: the fork was deleted
    head_ref: str
    head_sha: str
    base_ref: str
    created_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    updated_at: datetime | None
    html_url: str
    labels: tuple[str, ...]
    # The review payload's PR object lacks these: None means "unknown, keep what we have or fetch it".
    additions: int | None = None
    deletions: int | None = None
    changed_files: int | None = None
    # Outcomes: the merge commit of a merged PR, and the PR its body reverts ("Reverts owner/repo#N").
    merge_commit_sha: str | None = None
    reverts_number: int | None = None


@dataclass(frozen=True, slots=True)
class CommitAuthor:
    """A commit's author as GitHub reports it: the git e-mail and name, and the GitHub account GitHub linked to
    that e-mail (None when no account verified it)."""

    email: str | None  # lower-cased
    name: str | None
    login: str | None


@dataclass(frozen=True, slots=True)
class PullCommit:
    sha: str
    author: CommitAuthor


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    review_id: int
    reviewer: str  # lower-cased login
    state: str  # approved | changes_requested | commented | dismissed
    submitted_at: datetime


def parse_pull(data: Any, *, repo: str) -> PullRequestSnapshot:
    """A pull request object (webhook or REST) as a snapshot; raises Ignored when essentials are missing or a
    value does not fit its column."""
    if not isinstance(data, dict) or integer(data.get("number")) is None:
        raise Ignored("payload has no pull request")
    number = ranged(data.get("number"), "pull_request.number", high=MAX_NUMBER)
    created_at = moment(data.get("created_at"))
    head_sha = sha(dig(data, "head", "sha"), "pull_request.head.sha")
    if number is None or created_at is None or not head_sha:
        raise Ignored("pull request lacks created_at or head sha")
    labels = tuple(
        label["name"]
        for label in items(data.get("labels"))
        if isinstance(label, dict) and isinstance(label.get("name"), str)
    )

    def count(key: str) -> int | None:
        value = integer(data.get(key))
        if value is None or value < 0:  # drift: keep what is stored
            return None
        return ranged(value, f"pull_request.{key}", low=0, high=MAX_NUMBER)

    def ref(key: str) -> str:
        return fits(text(dig(data, key, "ref")), f"pull_request.{key}.ref", REF_CHARS)

    return PullRequestSnapshot(
        repo=repo,
        number=number,
        title=text(data.get("title")),
        author=fits(text(dig(data, "user", "login")), "pull_request.user.login", LOGIN_CHARS),
        state="closed" if data.get("state") == "closed" else "open",
        merged=bool(data.get("merged")) or data.get("merged_at") is not None,
        draft=bool(data.get("draft")),
        head_repo=full_name(dig(data, "head", "repo"), "pull_request.head.repo"),
        head_ref=ref("head"),
        head_sha=head_sha,
        base_ref=ref("base"),
        created_at=created_at,
        closed_at=moment(data.get("closed_at")),
        merged_at=moment(data.get("merged_at")),
        updated_at=moment(data.get("updated_at")),
        html_url=fits(text(data.get("html_url")), "pull_request.html_url", URL_CHARS),
        labels=labels,
        additions=count("additions"),
        deletions=count("deletions"),
        changed_files=count("changed_files"),
        # Before the merge GitHub's merge_commit_sha is a test merge: only the merged PR's names its real commit.
        merge_commit_sha=(sha(data.get("merge_commit_sha"), "pull_request.merge_commit_sha") or None)
        if data.get("merged_at") is not None or data.get("merged")
        else None,
        reverts_number=reverted_pull_number(text(data.get("body"))[:65_536], repo=repo),
    )


def commit_author(git_author: Any, login: Any) -> CommitAuthor:
    """From a commit's git author ({name, email}) and the login GitHub matched to it (a push's `username`, the
    REST commit's top-level `author.login`)."""
    email = text(dig(git_author, "email")).strip().lower()
    name = text(dig(git_author, "name")).strip()
    return CommitAuthor(email=email or None, name=name or None, login=text(login).strip() or None)


def parse_pull_commits(listed: Any) -> list[PullCommit]:
    """`GET /repos/{o}/{r}/pulls/{n}/commits` items: each sha with its author (items without a sha are skipped)."""
    commits = [item for item in items(listed) if isinstance(item, dict) and isinstance(item.get("sha"), str)]
    return [
        PullCommit(item["sha"].lower(), commit_author(dig(item, "commit", "author"), dig(item, "author", "login")))
        for item in commits
        if item["sha"]
    ]


def parse_review_item(item: Any, *, submitted_fallback: datetime) -> ReviewFacts | None:
    """An item of `GET /repos/{o}/{r}/pulls/{n}/reviews`; None for a pending review (the reviewer's draft) or one
    that names no reviewer."""
    state = REVIEW_STATES.get(text(dig(item, "state")).lower())
    login = text(dig(item, "user", "login")).lower()
    review_id = github_id(dig(item, "id"), "review.id")
    if state is None or not login or review_id is None:
        return None
    return ReviewFacts(
        review_id=review_id,
        reviewer=fits(login, "review.user.login", LOGIN_CHARS),
        state=state,
        submitted_at=moment(dig(item, "submitted_at")) or submitted_fallback,
    )
