"""A webhook event applied to what Tokentrail knows of GitHub (app.repo_state): the facts it carries, stored
unless GitHub's stored facts are newer (DESIGN §5). Matching is left to the refresh the event queues: a PR whose
facts can move records is marked, and its next refresh re-matches it once (after syncing with GitHub in App mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from app import people, repo_state, reverts
from app.events import (
    CheckRerequest,
    Event,
    InstallationEvent,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
)
from app.github_objects import PullRequestSnapshot
from app.rematch import PullKey, rematch_pulls

# Actions whose payload carries a new head of the PR: the bounds of "cost between pushes".
_HEAD_ACTIONS = {"opened", "reopened", "synchronize", "ready_for_review", "closed"}


@dataclass
class Refreshes:
    """The PRs whose comment and check run an event makes stale: after the debounce, or at once when asked."""

    later: set[PullKey] = field(default_factory=set)
    now: set[PullKey] = field(default_factory=set)


def apply_event(session: Session, event: Event, *, grace: timedelta) -> Refreshes:
    if isinstance(event, InstallationEvent):
        repo_state.apply_installation(session, event)
        return Refreshes()
    if isinstance(event, PullRequestEvent):
        return _pull_request(session, event, grace=grace)
    if isinstance(event, ReviewEvent):
        return _review(session, event, grace=grace)
    if isinstance(event, PushEvent):
        return _push(session, event, grace=grace)
    return _check_rerequest(session, event)


def _repository(
    session: Session, event: PullRequestEvent | ReviewEvent | PushEvent, repo: str
) -> list[tuple[str, str]]:
    return repo_state.upsert_repository(
        session,
        repo=repo,
        installation_id=event.installation_id,
        default_branch=event.default_branch,
        repository_id=event.repository_id,
        owner_id=event.owner_id,
    )


def _moved(session: Session, moved: list[tuple[str, str]], *, grace: timedelta) -> set[PullKey]:
    """A repository's default branch changed: its records there and on the old one match differently now."""
    return rematch_pulls(session, keys=set(), grace=grace, moved_default_branches=moved) if moved else set()


def _record_pull(session: Session, pull: PullRequestSnapshot) -> set[PullKey]:
    repo_state.upsert_pull(session, pull)
    repo_state.add_commits(session, repo=pull.repo, number=pull.number, shas=[pull.head_sha])
    repo_state.mark_rematch(session, [(pull.repo, pull.number)])
    return {(pull.repo, pull.number)}


def _pull_request(session: Session, event: PullRequestEvent, *, grace: timedelta) -> Refreshes:
    pull = event.pull
    moved = _moved(session, _repository(session, event, pull.repo), grace=grace)
    if event.action in _HEAD_ACTIONS:
        at = pull.created_at if event.action in {"opened", "reopened"} else pull.updated_at or pull.created_at
        repo_state.add_push(session, repo=pull.repo, number=pull.number, sha=pull.head_sha, at=at)
    refreshes = moved | _record_pull(session, pull)
    if pull.merged:  # a merged revert (or revert of a revert) changes the outcome of the PRs it names
        refreshes |= reverts.pulls_touched_by_reverts(session, repo=pull.repo)
    return Refreshes(later=refreshes)


def _review(session: Session, event: ReviewEvent, *, grace: timedelta) -> Refreshes:
    pull = event.pull
    moved = _moved(session, _repository(session, event, pull.repo), grace=grace)
    repo_state.upsert_review(
        session,
        repo=pull.repo,
        number=pull.number,
        review_id=event.review_id,
        reviewer=event.reviewer,
        state=event.state,
        submitted_at=event.submitted_at,
    )
    return Refreshes(later=moved | _record_pull(session, pull))


def _push(session: Session, event: PushEvent, *, grace: timedelta) -> Refreshes:
    moved = _moved(session, _repository(session, event, event.repo), grace=grace)
    people.record_people(session, owner=event.repo.split("/")[0], authors=event.authors)
    if event.branch == event.default_branch:
        # The budget is read from the default branch: a push there may change it for every open PR.
        repo_state.mark_config_stale(session, repo=event.repo)
        refreshes = moved | repo_state.open_pulls(session, repo=event.repo)
        if reverts.record_revert_commits(session, repo=event.repo, reverts=event.reverts, at=event.pushed_at):
            refreshes |= reverts.pulls_touched_by_reverts(session, repo=event.repo)
        return Refreshes(later=refreshes)
    if event.deleted:
        return Refreshes(later=moved)
    pulls = repo_state.open_pulls_of_branch(session, head_repo=event.repo, head_ref=event.branch)
    for repo, number in pulls:
        repo_state.add_commits(session, repo=repo, number=number, shas=[*event.commits, event.after])
        if event.after:
            repo_state.add_push(session, repo=repo, number=number, sha=event.after, at=event.pushed_at)
    repo_state.mark_rematch(session, pulls)
    return Refreshes(later=moved | pulls)


def _check_rerequest(session: Session, event: CheckRerequest) -> Refreshes:
    pulls = {(event.repo, number) for number in event.numbers}
    if not pulls and event.head_sha:
        pulls = repo_state.pulls_at_head(session, repo=event.repo, head_sha=event.head_sha)
    return Refreshes(now=pulls)
