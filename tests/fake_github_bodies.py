"""GitHub-shaped JSON bodies, and the fake's pure helpers, for the fake GitHub of tests/fake_github.py.

Shapes follow the octokit webhook examples (repository, user, installation objects) and the REST schema that
githubkit 0.16.1 validates against (githubkit_schemas, API version 2026-03-10). `api` is the fake's base URL:
API links in bodies point back at the fake so that a client following them stays on it.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

HTML = "https://github.com"
DOCS = "https://docs.github.com/rest"
PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
EVENTS = ["check_run", "check_suite", "installation_repositories", "pull_request", "pull_request_review", "push"]
_REPO_LINKS = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def stable_id(text: str) -> int:
    """A deterministic positive id for a name (users, labels, forks the fake was not told about)."""
    return zlib.crc32(text.encode()) % 90_000_000 + 1_000


def fake_sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode().rstrip("=")


def iso(value: datetime | str | None) -> str | None:
    """GitHub's timestamp format, 2019-05-15T15:20:33Z (githubkit parses `expires_at` with exactly this)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(message: str, status: int, documentation_url: str = DOCS) -> dict[str, Any]:
    return {"message": message, "documentation_url": documentation_url, "status": str(status)}


def user(api: str, login: str, kind: str | None = None) -> dict[str, Any]:
    ident = stable_id(login)
    kind = kind or ("Bot" if login.endswith("[bot]") else "User")
    url = f"{api}/users/{login}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("User", ident),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{HTML}/{login}" if kind != "Bot" else f"{HTML}/apps/{login.removesuffix('[bot]')}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def app(api: str, app_id: int, slug: str, name: str, owner: str) -> dict[str, Any]:
    """An `Integration`, as GET /app and `performed_via_github_app` / check run `app` show it."""
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("App", app_id),
        "client_id": f"Iv1.{fake_sha(slug)[:16]}",
        "owner": user(api, owner, "Organization"),
        "name": name,
        "description": "Links AI spend to pull requests.",
        "external_url": "https://tokentrail.example",
        "html_url": f"{HTML}/apps/{slug}",
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": "2024-01-02T03:04:05Z",
        "permissions": dict(PERMISSIONS),
        "events": list(EVENTS),
    }


def installation(api: str, ident: int, account: str, account_type: str, the_app: dict[str, Any]) -> dict[str, Any]:
    owner = user(api, account, account_type)
    return {
        "id": ident,
        "client_id": the_app["client_id"],
        "account": owner,
        "repository_selection": "all",
        "access_tokens_url": f"{api}/app/installations/{ident}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{HTML}/organizations/{account}/settings/installations/{ident}",
        "app_id": the_app["id"],
        "app_slug": the_app["slug"],
        "target_id": owner["id"],
        "target_type": account_type,
        "permissions": dict(PERMISSIONS),
        "events": list(EVENTS),
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": "2024-01-02T03:04:05Z",
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


def repository(
    api: str, full_name: str, ident: int, default_branch: str, *, fork: bool = False, private: bool = True
) -> dict[str, Any]:
    """A `FullRepository` (GET /repos/{o}/{r}); a valid `Repository` too (pull request head/base)."""
    owner, name = full_name.split("/", 1)
    url = f"{api}/repos/{full_name}"
    return {
        "id": ident,
        "node_id": node_id("Repository", ident),
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": user(api, owner, "Organization" if not fork else "User"),
        "html_url": f"{HTML}/{full_name}",
        "description": None,
        "fork": fork,
        "url": url,
        **{key: url + suffix for key, suffix in _REPO_LINKS.items()},
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{HTML}/{full_name}.git",
        "svn_url": f"{HTML}/{full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": True,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private" if private else "public",
        "pushed_at": "2024-01-02T03:04:05Z",
        "created_at": "2024-01-02T03:04:05Z",
        "updated_at": "2024-01-02T03:04:05Z",
        "permissions": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
        "license": None,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "subscribers_count": 0,
        "network_count": 0,
    }


def label(api: str, full_name: str, name: str) -> dict[str, Any]:
    ident = stable_id(f"{full_name}:{name}")
    return {
        "id": ident,
        "node_id": node_id("Label", ident),
        "url": f"{api}/repos/{full_name}/labels/{name}",
        "name": name,
        "description": None,
        "color": "ededed",
        "default": False,
        "archived_by": None,  # required (and null) in the 2026-03-10 schema githubkit validates with
    }


def pull(
    api: str, pr: dict[str, Any], base_repo: dict[str, Any], head_repo: dict[str, Any] | None, comments: int
) -> dict[str, Any]:
    full, number = base_repo["full_name"], pr["number"]
    url, html = f"{api}/repos/{full}/pulls/{number}", f"{HTML}/{full}/pull/{number}"
    issue = f"{api}/repos/{full}/issues/{number}"
    author = user(api, pr["user"])
    head_owner = head_repo["owner"]["login"] if head_repo else pr["user"]
    merged_by = user(api, base_repo["owner"]["login"]) if pr["merged"] else None
    links = {"self": url, "html": html, "issue": issue, "comments": f"{issue}/comments"}
    links |= {"review_comments": f"{url}/comments", "review_comment": f"{api}/repos/{full}/pulls/comments{{/number}}"}
    links |= {"commits": f"{url}/commits", "statuses": f"{api}/repos/{full}/statuses/{pr['head_sha']}"}
    closed = pr["state"] == "closed"
    return {
        "url": url,
        "id": base_repo["id"] * 1000 + number,
        "node_id": node_id("PullRequest", base_repo["id"] * 1000 + number),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue,
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": number,
        "state": pr["state"],
        "locked": False,
        "title": pr["title"],
        "user": author,
        "body": pr["body"],
        "labels": [label(api, full, name) for name in pr["labels"]],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr["created_at"],
        "updated_at": pr["updated_at"],
        "closed_at": pr["closed_at"],
        "merged_at": pr["merged_at"],
        "merge_commit_sha": fake_sha(f"merge:{full}#{number}") if pr["merged"] else None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": {
            "label": f"{head_owner}:{pr['head_ref']}",
            "ref": pr["head_ref"],
            "sha": pr["head_sha"],
            "user": head_repo["owner"] if head_repo else None,
            "repo": head_repo,
        },
        "base": {
            "label": f"{base_repo['owner']['login']}:{pr['base_ref']}",
            "ref": pr["base_ref"],
            "sha": pr["base_sha"],
            "user": base_repo["owner"],
            "repo": base_repo,
        },
        "_links": {key: {"href": href} for key, href in links.items()},
        "author_association": "CONTRIBUTOR",
        "auto_merge": None,
        "draft": pr["draft"],
        "merged": pr["merged"],
        "mergeable": None if closed else True,
        "rebaseable": None if closed else True,
        "mergeable_state": "unknown" if closed else "clean",
        "merged_by": merged_by,
        "comments": comments,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": len(pr["commits"]),
        "additions": pr["additions"],
        "deletions": pr["deletions"],
        "changed_files": pr["changed_files"],
    }


def pull_minimal(api: str, pr: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    """A `PullRequestMinimal`, as check runs list the pull requests of their head SHA."""
    mini_repo = {"id": repo["id"], "url": repo["url"], "name": repo["name"]}
    return {
        "id": repo["id"] * 1000 + pr["number"],
        "number": pr["number"],
        "url": f"{api}/repos/{repo['full_name']}/pulls/{pr['number']}",
        "head": {"ref": pr["head_ref"], "sha": pr["head_sha"], "repo": mini_repo},
        "base": {"ref": pr["base_ref"], "sha": pr["base_sha"], "repo": mini_repo},
    }


def commit(
    api: str,
    full_name: str,
    sha: str,
    parent: str | None,
    author: str,
    date: str,
    *,
    git_name: str | None = None,
    git_email: str | None = None,
    linked: bool = True,
) -> dict[str, Any]:
    """A commit of a PR's commit list by `author` (a login); `linked=False`: GitHub knows no account with the git
    e-mail, so the top-level `author` is null."""
    git_user = {"name": git_name or author, "email": git_email or f"{author}@users.noreply.github.com", "date": date}
    parents = [] if parent is None else [parent]
    return {
        "url": f"{api}/repos/{full_name}/commits/{sha}",
        "sha": sha,
        "node_id": node_id("Commit", stable_id(sha)),
        "html_url": f"{HTML}/{full_name}/commit/{sha}",
        "comments_url": f"{api}/repos/{full_name}/commits/{sha}/comments",
        "commit": {
            "url": f"{api}/repos/{full_name}/git/commits/{sha}",
            "author": git_user,
            "committer": git_user,
            "message": f"Change {sha[:7]}",
            "comment_count": 0,
            "tree": {"sha": fake_sha(f"tree:{sha}"), "url": f"{api}/repos/{full_name}/git/trees/{sha}"},
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        },
        "author": user(api, author) if linked else None,
        "committer": user(api, author),
        "parents": [
            {"sha": p, "url": f"{api}/repos/{full_name}/commits/{p}", "html_url": f"{HTML}/{full_name}/commit/{p}"}
            for p in parents
        ],
    }


def review(api: str, full_name: str, number: int, rv: dict[str, Any]) -> dict[str, Any]:
    html = f"{HTML}/{full_name}/pull/{number}#pullrequestreview-{rv['id']}"
    return {
        "id": rv["id"],
        "node_id": node_id("PullRequestReview", rv["id"]),
        "user": user(api, rv["user"]),
        "body": rv["body"],
        "state": rv["state"],
        "html_url": html,
        "pull_request_url": f"{api}/repos/{full_name}/pulls/{number}",
        "_links": {"html": {"href": html}, "pull_request": {"href": f"{api}/repos/{full_name}/pulls/{number}"}},
        "submitted_at": rv["submitted_at"],
        "commit_id": rv["commit_id"],
        "author_association": "MEMBER",
    }


def issue_comment(api: str, full_name: str, c: dict[str, Any], the_app: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": c["id"],
        "node_id": node_id("IssueComment", c["id"]),
        "url": f"{api}/repos/{full_name}/issues/comments/{c['id']}",
        "html_url": f"{HTML}/{full_name}/pull/{c['number']}#issuecomment-{c['id']}",
        "body": c["body"],
        "user": user(api, c["user"]),
        "created_at": c["created_at"],
        "updated_at": c["updated_at"],
        "issue_url": f"{api}/repos/{full_name}/issues/{c['number']}",
        "author_association": "NONE" if the_app else "CONTRIBUTOR",
        "performed_via_github_app": the_app,
    }


def check_run(
    api: str, full_name: str, run: dict[str, Any], the_app: dict[str, Any], pulls: list[dict[str, Any]]
) -> dict[str, Any]:
    url = f"{api}/repos/{full_name}/check-runs/{run['id']}"
    output = {key: run["output"].get(key) for key in ("title", "summary", "text")}
    return {
        "id": run["id"],
        "head_sha": run["head_sha"],
        "node_id": node_id("CheckRun", run["id"]),
        "external_id": run.get("external_id") or "",
        "url": url,
        "html_url": f"{HTML}/{full_name}/runs/{run['id']}",
        "details_url": run.get("details_url") or the_app["external_url"],
        "status": run["status"],
        "conclusion": run.get("conclusion"),
        "started_at": run.get("started_at"),
        "completed_at": run.get("completed_at"),
        "output": output | {"annotations_count": 0, "annotations_url": f"{url}/annotations"},
        "name": run["name"],
        "check_suite": {"id": run["check_suite_id"]},
        "app": the_app,
        "pull_requests": pulls,
    }


def content_file(api: str, full_name: str, path: str, ref: str, text: str) -> dict[str, Any]:
    data = text.encode()
    encoded = base64.b64encode(data).decode()
    blob_sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    url = f"{api}/repos/{full_name}/contents/{path}?ref={ref}"
    git_url, html_url = f"{api}/repos/{full_name}/git/blobs/{blob_sha}", f"{HTML}/{full_name}/blob/{ref}/{path}"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(data),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        # GitHub wraps the base64 text at 60 characters.
        "content": "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60)),
        "sha": blob_sha,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"https://raw.githubusercontent.com/{full_name}/{ref}/{path}",
        "_links": {"self": url, "git": git_url, "html": html_url},
    }


# ---- pure helpers of the fake: faults, pagination, check-run updates ------------------------------------------
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
    "out to GitHub Support for help, please include the request ID 0000:FAKE:0000."
)
_RATE_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


def fault(
    status: int, retry_after: int | None, secondary: bool, remaining_zero: bool, message: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of an injected error: server error, secondary or primary rate limit."""
    headers: dict[str, str] = {} if retry_after is None else {"retry-after": str(retry_after)}
    if remaining_zero:
        reset = str(int(datetime.now(UTC).timestamp()) + 60)
        headers |= {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
        headers |= {"x-ratelimit-reset": reset, "x-ratelimit-resource": "core"}
    if secondary:
        return error(message or SECONDARY_MESSAGE, status, f"{_RATE_DOCS}#about-secondary-rate-limits"), headers
    if remaining_zero:
        message = message or "API rate limit exceeded for installation ID 0."
        return error(message, status, f"{_RATE_DOCS}#about-primary-rate-limits"), headers
    return error(message or HTTPStatus(status).phrase, status), headers


def page(items: list[Any], query: dict[str, str], link_base: str) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` (per_page ≤ 100, default 30; page from 1) and GitHub's Link header for it."""
    per_page = max(1, min(int(query.get("per_page", 30)), 100))
    number, last = max(1, int(query.get("page", 1))), max(1, -(-len(items) // per_page))
    rels = {"prev": number - 1, "next": number + 1, "last": last, "first": 1}
    shown = {"prev": number > 1, "next": number < last, "last": number < last, "first": number > 1}
    links = [f'<{link_base}?{urlencode(query | {"page": n})}>; rel="{rel}"' for rel, n in rels.items() if shown[rel]]
    return items[(number - 1) * per_page : number * per_page], {"link": ", ".join(links)} if links else {}


def apply_check_run(run: dict[str, Any], body: dict[str, Any], now: str) -> str | None:
    """Merge a create/update body into a stored check run; returns an error message for a 422 instead."""
    if body.get("status") == "completed" and body.get("conclusion", run.get("conclusion")) is None:
        return "Invalid request.\n\nconclusion is required when status is completed."
    for key in ("name", "details_url", "external_id", "status", "conclusion", "started_at", "completed_at"):
        if key in body:
            run[key] = body[key]
    run["output"] = run.get("output", {}) | (body.get("output") or {})
    if body.get("conclusion") is not None:
        run["status"] = "completed"
    if run["status"] == "completed":
        run["completed_at"] = run.get("completed_at") or now
    return None


def select_check_runs(runs: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """GET …/check-runs filters: check_name, status, filter=latest (default: the newest run of each name)."""
    runs = sorted(runs, key=lambda r: -r["id"])
    runs = [r for r in runs if query.get("check_name") in (None, r["name"])]
    runs = [r for r in runs if query.get("status") in (None, r["status"])]
    if query.get("filter", "latest") == "latest":
        runs = [r for i, r in enumerate(runs) if r["name"] not in {x["name"] for x in runs[:i]}]
    return runs


def access_token(token: str) -> dict[str, Any]:
    expires = iso(datetime.now(UTC) + timedelta(hours=1))
    return {"token": token, "expires_at": expires, "permissions": dict(PERMISSIONS), "repository_selection": "all"}
