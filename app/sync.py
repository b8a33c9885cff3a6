"""App mode: bring one pull request's stored facts up to GitHub's (the PR with its diff size, its commits and their
authors, its reviews, and the repository's budget file when the default branch moved). Webhooks can be late, lost
or out of order; the refresh that will post reads GitHub's own state first.

Every GitHub read comes before any database write: on SQLite the first write takes the database's only write
lock, which should not be held while waiting on the network.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app import people, repo_state
from app.db import as_utc
from app.events import Ignored
from app.github import GitHubError
from app.github_objects import parse_pull, parse_review_item
from app.pull_port import PullPort
from app.repo_config import CONFIG_PATH


def sync_pull(session: Session, port: PullPort, *, pull: Any) -> bool:
    """Store GitHub's current facts of `pull` (its stored row); True when they changed something matching
    depends on (new commits, or a newer state that opened or closed the PR)."""
    ref = port.ref
    try:
        snapshot = parse_pull(port.get_pull(), repo=ref.repo)
    except Ignored as ignored:
        raise GitHubError(f"unreadable pull request: {ignored.reason}", retryable=False) from None
    commits = port.list_commits()
    created = as_utc(pull.created_at)
    reviews = [r for item in port.list_reviews() if (r := parse_review_item(item, submitted_fallback=created))]
    config_branch = repo_state.stale_config_branch(session, repo=ref.repo)
    config = port.get_file(CONFIG_PATH, ref=config_branch) if config_branch is not None else None

    newer = repo_state.upsert_pull(session, snapshot)
    shas = [*(commit.sha for commit in commits), snapshot.head_sha]
    new_commits = repo_state.add_commits(session, repo=ref.repo, number=ref.number, shas=shas)
    people.record_people(session, owner=ref.repo.split("/")[0], authors=[commit.author for commit in commits])
    for review in reviews:
        repo_state.upsert_review(
            session,
            repo=ref.repo,
            number=ref.number,
            review_id=review.review_id,
            reviewer=review.reviewer,
            state=review.state,
            submitted_at=review.submitted_at,
        )
    if config_branch is not None:
        repo_state.save_config(session, repo=ref.repo, text=config)
    closed_at = None if pull.closed_at is None else as_utc(pull.closed_at)
    reopened_or_closed = (snapshot.state, snapshot.closed_at) != (pull.state, closed_at)
    return bool(new_commits) or (newer and reopened_or_closed)
