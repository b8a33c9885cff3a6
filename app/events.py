"""GitHub webhook payloads -> the few facts Tokentrail acts on. Pure.

Only the fields we need are read, defensively, straight from the payload dict: GitHub adds fields and sometimes
sends null where a schema says object (a deleted fork's `head.repo`), and a strict model rejecting a real
delivery would lose it. What cannot be read makes the event `Ignored` with a reason, never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.parsing import dig, to_datetime

ZERO_SHA = "0" * 40


class Ignored(Exception):  # a verdict, not an error
    """This delivery needs no work; the reason goes back to GitHub in the 200 answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


@dataclass(frozen=True, slots=True)
class InstallationEvent:
    action: str
    installation_id: int
    account_login: str
    account_type: str
    repos_added: tuple[str, ...] = ()
    repos_removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    action: str
    installation_id: int | None
    default_branch: str
    pull: PullRequestSnapshot
    before: str | None = None  # synchronize: the previous head
    base_changed: bool = False


@dataclass(frozen=True, slots=True)
class ReviewEvent:
    action: str
    installation_id: int | None
    default_branch: str
    pull: PullRequestSnapshot
    review_id: int
    reviewer: str
    state: str  # approved | changes_requested | commented | dismissed
    submitted_at: datetime


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
class PushEvent:
    installation_id: int | None
    repo: str
    default_branch: str
    branch: str
    before: str
    after: str
    created: bool
    deleted: bool
    forced: bool
    commits: tuple[str, ...]
    pushed_at: datetime
    authors: tuple[CommitAuthor, ...] = ()  # of the pushed commits


@dataclass(frozen=True, slots=True)
class CheckRerequest:
    installation_id: int | None
    repo: str
    head_sha: str
    numbers: tuple[int, ...] = field(default_factory=tuple)


Event = InstallationEvent | PullRequestEvent | ReviewEvent | PushEvent | CheckRerequest

PULL_REQUEST_ACTIONS = {
    "opened",
    "reopened",
    "synchronize",
    "edited",
    "closed",
    "labeled",
    "unlabeled",
    "ready_for_review",
    "converted_to_draft",
}
REVIEW_ACTIONS = {"submitted", "dismissed", "edited"}
INSTALLATION_ACTIONS = {"created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"}


def parse_event(event: str, payload: Any) -> Event:
    """The facts of a delivery, or `Ignored` with the reason it needs no work."""
    if not isinstance(payload, dict):
        raise Ignored("payload is not a JSON object")
    action = _text(payload.get("action"))  # not a str (a list, say) must not reach a set lookup
    if event == "ping":
        raise Ignored("ping: pong")
    if event in {"installation", "installation_repositories"}:
        return _installation(event, payload)
    if event == "pull_request":
        if action not in PULL_REQUEST_ACTIONS:
            raise Ignored(f"pull_request.{action} needs no work")
        return _pull_request(payload)
    if event == "pull_request_review":
        if action not in REVIEW_ACTIONS:
            raise Ignored(f"pull_request_review.{action} needs no work")
        return _review(payload)
    if event == "push":
        return _push(payload)
    if event in {"check_run", "check_suite"}:
        if action not in {"rerequested", "requested_action"}:
            raise Ignored(f"{event}.{action} needs no work")
        return _check_rerequest(event, payload)
    raise Ignored(f"event {event!r} is not used")


def _text(value: Any, default: str = "") -> str:
    # PostgreSQL text cannot hold NUL; a title or login carrying one must not fail the worker's inserts.
    return value.replace("\x00", "") if isinstance(value, str) else default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _items(value: Any) -> list[Any]:
    """A JSON array, or nothing: a drifted scalar or object must not be iterated."""
    return value if isinstance(value, list) else []


def _full_name(repository: Any) -> str | None:
    name = dig(repository, "full_name") if isinstance(repository, dict) else None
    return name.lower() if isinstance(name, str) and "/" in name else None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return to_datetime(value)
    except ValueError:
        return None


def _installation_id(payload: dict[str, Any]) -> int | None:
    return _int(dig(payload, "installation", "id"))


def _repo_of(payload: dict[str, Any]) -> tuple[str, str]:
    repo = _full_name(payload.get("repository"))
    if repo is None:
        raise Ignored("payload names no repository")
    return repo, _text(dig(payload, "repository", "default_branch"), "main")


def _installation(event: str, payload: dict[str, Any]) -> InstallationEvent:
    action = _text(payload.get("action"))
    if event == "installation" and action not in INSTALLATION_ACTIONS:
        raise Ignored(f"installation.{action} needs no work")
    installation_id = _installation_id(payload)
    login = dig(payload, "installation", "account", "login")
    if installation_id is None or not isinstance(login, str):
        raise Ignored("installation payload lacks its id or account")

    def names(key: str) -> tuple[str, ...]:
        items = _items(payload.get(key))
        return tuple(n for n in (_full_name(item) for item in items if isinstance(item, dict)) if n)

    added = names("repositories_added") if event == "installation_repositories" else names("repositories")
    return InstallationEvent(
        action=action if event == "installation" else f"repositories_{action}",
        installation_id=installation_id,
        account_login=login.lower(),
        account_type=_text(dig(payload, "installation", "account", "type"), "User"),
        repos_added=added if action != "deleted" else (),
        repos_removed=names("repositories_removed") if event == "installation_repositories" else (),
    )


def parse_pull(data: Any, *, repo: str) -> PullRequestSnapshot:
    """A pull request object (webhook or REST) as a snapshot; raises Ignored when essentials are missing."""
    if not isinstance(data, dict) or _int(data.get("number")) is None:
        raise Ignored("payload has no pull request")
    created_at = _time(data.get("created_at"))
    head_sha = _text(dig(data, "head", "sha")).lower()
    if created_at is None or not head_sha:
        raise Ignored("pull request lacks created_at or head sha")
    labels = tuple(
        label["name"]
        for label in _items(data.get("labels"))
        if isinstance(label, dict) and isinstance(label.get("name"), str)
    )

    def count(key: str) -> int | None:
        value = _int(data.get(key))
        return value if value is not None and value >= 0 else None

    return PullRequestSnapshot(
        repo=repo,
        number=data["number"],
        title=_text(data.get("title")),
        author=_text(dig(data, "user", "login")),
        state="closed" if data.get("state") == "closed" else "open",
        merged=bool(data.get("merged")) or data.get("merged_at") is not None,
        draft=bool(data.get("draft")),
        head_repo=_full_name(dig(data, "head", "repo")),
        head_ref=_text(dig(data, "head", "ref")),
        head_sha=head_sha,
        base_ref=_text(dig(data, "base", "ref")),
        created_at=created_at,
        closed_at=_time(data.get("closed_at")),
        merged_at=_time(data.get("merged_at")),
        updated_at=_time(data.get("updated_at")),
        html_url=_text(data.get("html_url")),
        labels=labels,
        additions=count("additions"),
        deletions=count("deletions"),
        changed_files=count("changed_files"),
    )


def _pull_request(payload: dict[str, Any]) -> PullRequestEvent:
    repo, default_branch = _repo_of(payload)
    action = _text(payload.get("action"))
    base_changed = action == "edited" and isinstance(dig(payload, "changes", "base"), dict)
    if action == "edited" and not base_changed and not isinstance(dig(payload, "changes", "title"), dict):
        raise Ignored("pull_request.edited without a base or title change needs no work")
    return PullRequestEvent(
        action=action,
        installation_id=_installation_id(payload),
        default_branch=default_branch,
        pull=parse_pull(payload.get("pull_request"), repo=repo),
        before=_text(payload.get("before")).lower() or None,
        base_changed=base_changed,
    )


def _review(payload: dict[str, Any]) -> ReviewEvent:
    repo, default_branch = _repo_of(payload)
    review = payload.get("review")
    review_id = _int(dig(review, "id"))
    if review_id is None:
        raise Ignored("review payload lacks the review id")
    state = _text(dig(review, "state")).lower()  # webhooks send lower case, the REST API upper case
    if payload.get("action") == "dismissed":
        state = "dismissed"
    return ReviewEvent(
        action=_text(payload.get("action")),
        installation_id=_installation_id(payload),
        default_branch=default_branch,
        pull=parse_pull(payload.get("pull_request"), repo=repo),
        review_id=review_id,
        reviewer=_text(dig(review, "user", "login")).lower(),
        state=state,
        submitted_at=_time(dig(review, "submitted_at")) or datetime.now(tz=UTC),
    )


def commit_author(git_author: Any, login: Any) -> CommitAuthor:
    """From a commit's git author ({name, email}) and the login GitHub matched to it (a push's `username`, the
    REST commit's top-level `author.login`)."""
    email = _text(dig(git_author, "email")).strip().lower()
    name = _text(dig(git_author, "name")).strip()
    return CommitAuthor(email=email or None, name=name or None, login=_text(login).strip() or None)


def parse_pull_commits(items: Any) -> list[PullCommit]:
    """`GET /repos/{o}/{r}/pulls/{n}/commits` items: each sha with its author (items without a sha are skipped)."""
    commits = [item for item in _items(items) if isinstance(item, dict) and isinstance(item.get("sha"), str)]
    return [
        PullCommit(item["sha"].lower(), commit_author(dig(item, "commit", "author"), dig(item, "author", "login")))
        for item in commits
        if item["sha"]
    ]


def _push(payload: dict[str, Any]) -> PushEvent:
    repo, default_branch = _repo_of(payload)
    ref = _text(payload.get("ref"))
    if not ref.startswith("refs/heads/"):
        raise Ignored(f"push to {ref or 'an unknown ref'} is not a branch")
    commits = tuple(
        sha.lower()
        for sha in (dig(c, "id") for c in _items(payload.get("commits")) if isinstance(c, dict))
        if isinstance(sha, str)
    )
    pushed_at = _time(dig(payload, "head_commit", "timestamp")) or _time(dig(payload, "repository", "pushed_at"))
    return PushEvent(
        installation_id=_installation_id(payload),
        repo=repo,
        default_branch=default_branch,
        branch=ref[len("refs/heads/") :],
        before=_text(payload.get("before")).lower(),
        after=_text(payload.get("after")).lower(),
        created=bool(payload.get("created")),
        deleted=bool(payload.get("deleted")),
        forced=bool(payload.get("forced")),
        commits=commits,
        pushed_at=pushed_at or datetime.now(tz=UTC),
        authors=tuple(
            commit_author(c.get("author"), dig(c, "author", "username"))
            for c in _items(payload.get("commits"))
            if isinstance(c, dict)
        ),
    )


def _check_rerequest(event: str, payload: dict[str, Any]) -> CheckRerequest:
    repo, _ = _repo_of(payload)
    body = payload.get(event) or {}
    if event == "check_run" and dig(body, "name") not in (None, "AI spend"):
        raise Ignored("check run is not ours")
    numbers = tuple(
        pr["number"]
        for pr in _items(dig(body, "pull_requests"))
        if isinstance(pr, dict) and _int(pr.get("number")) is not None
    )
    return CheckRerequest(
        installation_id=_installation_id(payload),
        repo=repo,
        head_sha=_text(dig(body, "head_sha")).lower(),
        numbers=numbers,
    )


def loads(body: bytes) -> Any:
    """The payload of a UTF-8 JSON body. Decoded first: `json.loads(bytes)` would also accept UTF-16/32, which
    GitHub never sends and which the delivery row (stored as UTF-8 text) could not hold faithfully."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Ignored("payload is not JSON") from None
