"""Builders of GitHub webhook payloads for tests, starting from the verbatim octokit examples and changing only
what a scenario needs (repository, numbers, refs, times, states), plus signing."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from tests.fake_github_bodies import stable_id

UPSTREAM = Path(__file__).resolve().parent / "fixtures" / "github"


@cache
def _upstream(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((UPSTREAM / name).read_text())
    return data


def github_id(name: str) -> int:
    """The id GitHub gives the account or repository called `name` in these tests: stable, so that webhooks and
    OIDC claims agree on it (GitHub's ids never change with a name; a test of a renamed account picks others)."""
    return stable_id(name.lower())


def _repository(full_name: str, *, default_branch: str = "main") -> dict[str, Any]:
    owner, name = full_name.split("/")
    repository = copy.deepcopy(_upstream("pull_request.opened.payload.json")["repository"])
    repository.update(full_name=full_name, name=name, default_branch=default_branch, id=github_id(full_name))
    repository["owner"] = {**repository["owner"], "login": owner, "id": github_id(owner)}
    return repository


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pull_request_event(
    action: str = "opened",
    *,
    repo: str = "acme/widgets",
    number: int = 12,
    title: str = "Add a cache layer",
    author: str = "alice",
    head_repo: str | None = None,
    head_ref: str = "feat/cache",
    head_sha: str = "a" * 40,
    base_ref: str = "main",
    additions: int = 420,
    deletions: int = 96,
    changed_files: int = 12,
    created_at: datetime,
    updated_at: datetime | None = None,
    closed_at: datetime | None = None,
    merged: bool = False,
    labels: tuple[str, ...] = (),
    installation_id: int = 77,
    head_repo_deleted: bool = False,
) -> dict[str, Any]:
    payload = copy.deepcopy(_upstream("pull_request.opened.payload.json"))
    payload["action"] = action
    payload["number"] = number
    payload["repository"] = _repository(repo)
    payload["installation"] = {**payload.get("installation", {}), "id": installation_id}
    pull = payload["pull_request"]
    pull.update(
        number=number,
        title=title,
        state="closed" if closed_at else "open",
        created_at=iso(created_at),
        updated_at=iso(updated_at or closed_at or created_at),
        closed_at=iso(closed_at) if closed_at else None,
        merged_at=iso(closed_at) if merged and closed_at else None,
        merged=merged,
        additions=additions,
        deletions=deletions,
        changed_files=changed_files,
        labels=[{"id": i, "name": name, "color": "ededed", "default": False} for i, name in enumerate(labels)],
        html_url=f"https://github.com/{repo}/pull/{number}",
    )
    pull["user"] = {**pull["user"], "login": author}
    pull["head"] = {**pull["head"], "ref": head_ref, "sha": head_sha, "label": f"x:{head_ref}"}
    pull["head"]["repo"] = None if head_repo_deleted else _repository(head_repo or repo)
    pull["base"] = {**pull["base"], "ref": base_ref, "repo": _repository(repo)}
    return payload


def make_review_event(
    state: str,
    *,
    pull_event: dict[str, Any],
    reviewer: str = "bob",
    review_id: int = 9001,
    submitted_at: datetime,
    action: str = "submitted",
) -> dict[str, Any]:
    payload = copy.deepcopy(_upstream("pull_request_review.submitted.payload.json"))
    payload["action"] = action
    payload["repository"] = pull_event["repository"]
    payload["installation"] = pull_event["installation"]
    simple = {
        k: v
        for k, v in pull_event["pull_request"].items()
        if k not in {"additions", "deletions", "changed_files", "merged"}
    }
    payload["pull_request"] = simple
    review = payload["review"]
    review.update(id=review_id, state=state, submitted_at=iso(submitted_at))
    review["user"] = {**review["user"], "login": reviewer}
    return payload


def make_issue_comment_event(
    *,
    repo: str = "acme/widgets",
    number: int = 12,
    on_pull_request: bool = True,
    body: str = "@claude the cache test is flaky: fix it",
) -> dict[str, Any]:
    """`issue_comment` `created` on issue `number` of `repo`. GitHub sends a pull request's conversation comments as
    an issue's: with `on_pull_request`, `issue.pull_request` holds the links it gives (`url`, `html_url`,
    `diff_url`, `patch_url`, `merged_at`, the shape of octokit's `payload-schemas/.../common/issue.schema.json`;
    upstream has no such example) and nothing of the head."""
    payload = copy.deepcopy(_upstream("issue_comment.created.payload.json"))
    payload["repository"] = _repository(repo)
    api, web = f"https://api.github.com/repos/{repo}", f"https://github.com/{repo}"
    issue = payload["issue"]
    kind = "pull" if on_pull_request else "issues"
    issue.update(number=number, url=f"{api}/issues/{number}", html_url=f"{web}/{kind}/{number}")
    if on_pull_request:
        issue["pull_request"] = {
            "url": f"{api}/pulls/{number}",
            "html_url": f"{web}/pull/{number}",
            "diff_url": f"{web}/pull/{number}.diff",
            "patch_url": f"{web}/pull/{number}.patch",
            "merged_at": None,
        }
    payload["comment"]["body"] = body
    return payload


def make_installation_event(
    *,
    account: str = "acme",
    installation_id: int = 77,
    repos: tuple[str, ...] = ("acme/widgets",),
    action: str = "created",
) -> dict[str, Any]:
    payload = copy.deepcopy(_upstream("installation.created.payload.json"))
    payload["action"] = action
    payload["installation"] = {**payload["installation"], "id": installation_id}
    payload["installation"]["account"] = {
        **payload["installation"]["account"],
        "login": account,
        "id": github_id(account),
    }
    payload["repositories"] = [
        {"id": github_id(r), "name": r.split("/")[1], "full_name": r, "private": True} for r in repos
    ]
    return payload


def sign(body: bytes, secret: str = "test-secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str = "test-secret"
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
    }
