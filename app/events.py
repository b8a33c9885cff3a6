"""GitHub webhook payloads -> the few facts Tokentrail acts on. Pure.

Only the fields we need are read, defensively, straight from the payload dict: GitHub adds fields and sometimes
sends null where a schema says object (a deleted fork's `head.repo`), and a strict model rejecting a real
delivery would lose it. What cannot be read makes the event `Ignored` with a reason, never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.github_objects import (
    CommitAuthor,
    PullRequestSnapshot,
    commit_author,
    parse_pull,
)
from app.outcomes import reverted_shas
from app.parsing import dig
from app.webhook_fields import (
    KIND_CHARS,
    LOGIN_CHARS,
    MAX_NUMBER,
    REF_CHARS,
    fits,
    full_name,
    github_id,
    items,
    moment,
    ranged,
    sha,
    text,
)
from app.webhook_fields import (
    Ignored as Ignored,  # raised by parse_event: its callers know it from here
)


@dataclass(frozen=True, slots=True)
class InstallationEvent:
    action: str
    installation_id: int
    account_login: str
    account_type: str
    repos_added: tuple[str, ...] = ()
    repos_removed: tuple[str, ...] = ()
    # GitHub's ids, which outlive names: the account's, and each added repository's (its owner is the account).
    account_id: int | None = None
    repository_ids: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    action: str
    installation_id: int | None
    default_branch: str
    pull: PullRequestSnapshot
    before: str | None = None  # synchronize: the previous head
    base_changed: bool = False
    # GitHub's ids of the repository and of its owner (None in a payload that lacks them).
    repository_id: int | None = None
    owner_id: int | None = None


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
    # GitHub's ids of the repository and of its owner (None in a payload that lacks them).
    repository_id: int | None = None
    owner_id: int | None = None


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
    # (commit, the commit it reverts) for each pushed commit whose message says `This reverts commit <sha>`
    reverts: tuple[tuple[str, str], ...] = ()
    # GitHub's ids of the repository and of its owner (None in a payload that lacks them).
    repository_id: int | None = None
    owner_id: int | None = None


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


def parse_event(event: str, payload: Any, *, now: datetime) -> Event:
    """The facts of a delivery, or `Ignored` with the reason it needs no work. `now` stands in for a time the
    payload lacks (when a review was submitted, when a push happened)."""
    if not isinstance(payload, dict):
        raise Ignored("payload is not a JSON object")
    action = text(payload.get("action"))  # not a str (a list, say) must not reach a set lookup
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
        return _review(payload, now=now)
    if event == "push":
        return _push(payload, now=now)
    if event in {"check_run", "check_suite"}:
        if action not in {"rerequested", "requested_action"}:
            raise Ignored(f"{event}.{action} needs no work")
        return _check_rerequest(event, payload)
    raise Ignored(f"event {event!r} is not used")


def _installation_id(payload: dict[str, Any]) -> int | None:
    return github_id(dig(payload, "installation", "id"), "installation.id")


def _repo_of(payload: dict[str, Any]) -> tuple[str, str]:
    repo = full_name(payload.get("repository"), "repository")
    if repo is None:
        raise Ignored("payload names no repository")
    default_branch = text(dig(payload, "repository", "default_branch"), "main")
    return repo, fits(default_branch, "repository.default_branch", REF_CHARS)


def _repository_ids(payload: dict[str, Any]) -> tuple[int | None, int | None]:
    """GitHub's ids of the repository and of its owner: they stay when a name is renamed or reused."""
    repository = payload.get("repository")
    return (
        github_id(dig(repository, "id"), "repository.id"),
        github_id(dig(repository, "owner", "id"), "repository.owner.id"),
    )


def _installation(event: str, payload: dict[str, Any]) -> InstallationEvent:
    action = text(payload.get("action"))
    if event == "installation" and action not in INSTALLATION_ACTIONS:
        raise Ignored(f"installation.{action} needs no work")
    installation_id = _installation_id(payload)
    login = dig(payload, "installation", "account", "login")
    if installation_id is None or not isinstance(login, str):
        raise Ignored("installation payload lacks its id or account")

    def repositories(key: str) -> list[tuple[str, int | None]]:
        found = []
        for index, item in enumerate(items(payload.get(key))):
            name = full_name(item, f"{key}[{index}]")
            if name:
                found.append((name, github_id(dig(item, "id"), f"{key}[{index}].id")))
        return found

    added = repositories("repositories_added" if event == "installation_repositories" else "repositories")
    removed = repositories("repositories_removed") if event == "installation_repositories" else []
    if action == "deleted":
        added = []
    account_type = text(dig(payload, "installation", "account", "type"), "User")
    return InstallationEvent(
        action=action if event == "installation" else f"repositories_{action}",
        installation_id=installation_id,
        account_login=fits(text(login).lower(), "installation.account.login", LOGIN_CHARS),
        account_type=fits(account_type, "installation.account.type", KIND_CHARS),
        account_id=github_id(dig(payload, "installation", "account", "id"), "installation.account.id"),
        repos_added=tuple(name for name, _ in added),
        repos_removed=tuple(name for name, _ in removed),
        repository_ids=tuple((name, repo_id) for name, repo_id in added if repo_id is not None),
    )


def _pull_request(payload: dict[str, Any]) -> PullRequestEvent:
    repo, default_branch = _repo_of(payload)
    action = text(payload.get("action"))
    base_changed = action == "edited" and isinstance(dig(payload, "changes", "base"), dict)
    if action == "edited" and not base_changed and not isinstance(dig(payload, "changes", "title"), dict):
        raise Ignored("pull_request.edited without a base or title change needs no work")
    repository_id, owner_id = _repository_ids(payload)
    return PullRequestEvent(
        action=action,
        installation_id=_installation_id(payload),
        default_branch=default_branch,
        pull=parse_pull(payload.get("pull_request"), repo=repo),
        before=sha(payload.get("before"), "before") or None,
        base_changed=base_changed,
        repository_id=repository_id,
        owner_id=owner_id,
    )


def _review(payload: dict[str, Any], *, now: datetime) -> ReviewEvent:
    repo, default_branch = _repo_of(payload)
    review = payload.get("review")
    review_id = github_id(dig(review, "id"), "review.id")
    if review_id is None:
        raise Ignored("review payload lacks the review id")
    state = text(dig(review, "state")).lower()  # webhooks send lower case, the REST API upper case
    if payload.get("action") == "dismissed":
        state = "dismissed"
    repository_id, owner_id = _repository_ids(payload)
    return ReviewEvent(
        action=text(payload.get("action")),
        installation_id=_installation_id(payload),
        default_branch=default_branch,
        pull=parse_pull(payload.get("pull_request"), repo=repo),
        review_id=review_id,
        reviewer=fits(text(dig(review, "user", "login")).lower(), "review.user.login", LOGIN_CHARS),
        state=fits(state, "review.state", KIND_CHARS),
        submitted_at=moment(dig(review, "submitted_at")) or now,
        repository_id=repository_id,
        owner_id=owner_id,
    )


def _push(payload: dict[str, Any], *, now: datetime) -> PushEvent:
    repo, default_branch = _repo_of(payload)
    ref = text(payload.get("ref"))
    if not ref.startswith("refs/heads/"):
        raise Ignored(f"push to {ref[:300] or 'an unknown ref'} is not a branch")
    commits = tuple(
        sha(commit["id"], f"commits[{index}].id")
        for index, commit in enumerate(items(payload.get("commits")))
        if isinstance(commit, dict) and isinstance(commit.get("id"), str)
    )
    pushed_at = moment(dig(payload, "head_commit", "timestamp")) or moment(dig(payload, "repository", "pushed_at"))
    repository_id, owner_id = _repository_ids(payload)
    return PushEvent(
        installation_id=_installation_id(payload),
        repo=repo,
        default_branch=default_branch,
        branch=fits(ref[len("refs/heads/") :], "ref (the branch name)", REF_CHARS),
        before=sha(payload.get("before"), "before"),
        after=sha(payload.get("after"), "after"),
        created=bool(payload.get("created")),
        deleted=bool(payload.get("deleted")),
        forced=bool(payload.get("forced")),
        commits=commits,
        pushed_at=pushed_at or now,
        authors=tuple(
            commit_author(c.get("author"), dig(c, "author", "username"))
            for c in items(payload.get("commits"))
            if isinstance(c, dict)
        ),
        reverts=_reverts(payload),
        repository_id=repository_id,
        owner_id=owner_id,
    )


def _reverts(payload: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for index, commit in enumerate(items(payload.get("commits"))):
        if isinstance(commit, dict) and isinstance(commit.get("id"), str):
            reverting = sha(commit["id"], f"commits[{index}].id")
            found += [(reverting, target) for target in reverted_shas(text(commit.get("message"))[:65_536])]
    return tuple(found)


def _check_rerequest(event: str, payload: dict[str, Any]) -> CheckRerequest:
    repo, _ = _repo_of(payload)
    body = payload.get(event) or {}
    if event == "check_run" and dig(body, "name") not in (None, "AI spend"):
        raise Ignored("check run is not ours")
    numbers = tuple(
        number
        for index, pr in enumerate(items(dig(body, "pull_requests")))
        if isinstance(pr, dict)
        and (number := ranged(pr.get("number"), f"{event}.pull_requests[{index}].number", high=MAX_NUMBER)) is not None
    )
    return CheckRerequest(
        installation_id=_installation_id(payload),
        repo=repo,
        head_sha=sha(dig(body, "head_sha"), f"{event}.head_sha"),
        numbers=numbers,
    )


def loads(body: bytes) -> Any:
    """The payload of a UTF-8 JSON body. Decoded first: `json.loads(bytes)` would also accept UTF-16/32, which
    GitHub never sends and which the delivery row (stored as UTF-8 text) could not hold faithfully."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # ValueError: also an integer past Python's 4,300-digit limit
        raise Ignored("payload is not JSON") from None
