"""The demo's history as the HTTP requests that create it: GitHub webhooks and gateway/agent payloads in their
real shapes, posted to Tokentrail's own endpoints (so the demo exercises the product, not the database). Pure.

One organisation (acme), two repositories, 25 pull requests over four weeks: merged, closed without merge, still
open, one from a fork, one branch reused after a merge; authors working through Claude Code (OpenTelemetry
events), Codex (rollout transcripts) and an in-house agent behind LiteLLM; plus spend that matched no PR. Then two
more that show what came of the work: one through two rounds of requested changes, and the revert of the first
merged PR ("Reverts acme/widgets#101", as GitHub's Revert button writes).
"""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from app.local.demo_usage import DemoPull, Request, claude_code_export, codex_rollout, iso, litellm_callbacks, sha

ORG = "acme"
REPOS = ("acme/widgets", "acme/gateway")
FORK_OWNER = "bob-dev"
INSTALLATION_ID = 1001
AUTHORS = ("alice", "carol", "dave", "erin", "bob-dev")
TOPICS = (
    "Add a cache layer",
    "Retry failed webhooks",
    "Paginate the audit log",
    "Fix flaky login test",
    "Rate-limit the public API",
    "Migrate to structured logging",
    "Speed up CSV export",
    "Dark mode for settings",
    "Drop the legacy v1 endpoints",
    "Validate webhook payload sizes",
    "Add OpenAPI examples",
    "Shard the job queue",
    "Cache-bust static assets",
    "Tenant-aware metrics",
    "Refactor billing adapters",
    "Stream large downloads",
    "Harden password reset",
    "Batch email notifications",
    "Replace cron with a scheduler",
    "Trace slow queries",
    "Add feature flags",
    "Lazy-load the dashboard",
    "Bump the HTTP client",
    "Deduplicate search results",
    "Experiment: rewrite the parser",
)


def _repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": zlib.crc32(full_name.encode()),
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": {"login": owner, "type": "Organization" if owner == ORG else "User"},
        "default_branch": "main",
        "fork": owner != ORG,
        "html_url": f"https://github.com/{full_name}",
    }


def _pull_payload(
    pull: DemoPull, action: str, *, head_sha: str, updated_at: datetime, body: str = ""
) -> dict[str, Any]:
    closed = pull.closed_at is not None and action == "closed"
    return {
        "action": action,
        "number": pull.number,
        "installation": {"id": INSTALLATION_ID},
        "repository": _repository(pull.repo),
        "sender": {"login": pull.author},
        "pull_request": {
            "number": pull.number,
            "title": pull.title,
            "body": body,
            "state": "closed" if closed else "open",
            "user": {"login": pull.author},
            "draft": False,
            "html_url": f"https://github.com/{pull.repo}/pull/{pull.number}",
            "created_at": iso(pull.created_at),
            "updated_at": iso(updated_at),
            "closed_at": iso(pull.closed_at) if closed and pull.closed_at else None,
            "merged_at": iso(pull.closed_at) if closed and pull.merged and pull.closed_at else None,
            "merged": closed and pull.merged,
            "additions": pull.additions,
            "deletions": pull.deletions,
            "changed_files": max(1, (pull.additions + pull.deletions) // 40),
            "labels": [],
            "head": {"ref": pull.head_ref, "sha": head_sha, "repo": _repository(pull.head_repo)},
            "base": {"ref": "main", "sha": "0" * 40, "repo": _repository(pull.repo)},
        },
    }


def _webhook(event: str, payload: dict[str, Any]) -> Request:
    return Request(path="/github/webhook", body=json.dumps(payload).encode(), event=event)


def plan_pulls(now: datetime, rng: random.Random) -> list[DemoPull]:
    start = now - timedelta(days=28)
    pulls: list[DemoPull] = []
    numbers = {repo: 100 for repo in REPOS}
    for index, title in enumerate(TOPICS):
        repo = REPOS[0] if index % 5 != 3 else REPOS[1]
        numbers[repo] += 1
        created = start + timedelta(days=index * 1.05, hours=rng.randint(8, 11))
        author = AUTHORS[index % 4]
        head_repo, head_ref = repo, f"feat/{title.lower().replace(' ', '-').replace(':', '')[:28]}"
        if index == 7:  # a contribution from a fork
            author, head_repo = FORK_OWNER, f"{FORK_OWNER}/{repo.split('/')[1]}"
        if index == 12:  # this branch was used by an earlier PR that was merged: a new window starts
            head_ref = pulls[2].head_ref if pulls[2].repo == repo else head_ref
        outcome = "open" if index >= 21 or index == 17 else ("closed" if index in (4, 9, 15, 24) else "merged")
        closed_at = None if outcome == "open" else created + timedelta(hours=rng.randint(20, 60))
        if closed_at is not None and closed_at > now - timedelta(hours=2):
            closed_at = now - timedelta(hours=2)
        lines = rng.randint(40, 900)
        pulls.append(
            DemoPull(
                repo=repo,
                number=numbers[repo],
                title=title,
                author=author,
                head_repo=head_repo,
                head_ref=head_ref,
                created_at=created,
                closed_at=closed_at,
                merged=outcome == "merged",
                additions=int(lines * 0.7),
                deletions=lines - int(lines * 0.7),
            )
        )
    return pulls


def build_seed(now: datetime | None = None, *, seed: int = 7) -> list[Request]:
    """Every request of the demo history, in the order a real history would produce them."""
    now = now or datetime.now(tz=UTC)
    rng = random.Random(seed)
    requests = [
        _webhook(
            "installation",
            {
                "action": "created",
                "installation": {"id": INSTALLATION_ID, "account": {"login": ORG, "type": "Organization"}},
                "repositories": [
                    {"id": i, "name": r.split("/")[1], "full_name": r, "private": True} for i, r in enumerate(REPOS)
                ],
            },
        )
    ]
    pulls = plan_pulls(now, rng)
    for pull in pulls:
        first_sha = sha(rng)
        work_start = pull.created_at - timedelta(hours=rng.randint(2, 20))  # work before the PR is opened counts
        requests.append(
            claude_code_export(
                rng, pull=pull, session=f"cc-{pull.repo}-{pull.number}", start=work_start, calls=rng.randint(6, 30)
            )
        )
        requests.append(
            _webhook("pull_request", _pull_payload(pull, "opened", head_sha=first_sha, updated_at=pull.created_at))
        )
        end = pull.closed_at or now
        head, heads = first_sha, [(pull.created_at, first_sha)]  # what GitHub's PR says as time goes on
        for push in range(rng.randint(1, 3)):
            at = pull.created_at + (end - pull.created_at) * (push + 1) / 4
            if rng.random() < 0.5:
                requests.append(
                    codex_rollout(
                        rng,
                        pull=pull,
                        session=f"codex-{pull.repo}-{pull.number}-{push}",
                        start=at - timedelta(minutes=40),
                        turns=rng.randint(10, 40),
                    )
                )
            else:
                requests.append(
                    claude_code_export(
                        rng,
                        pull=pull,
                        session=f"cc-{pull.repo}-{pull.number}-{push}",
                        start=at - timedelta(minutes=50),
                        calls=rng.randint(15, 50),
                    )
                )
            head = sha(rng)
            heads.append((at, head))
            requests.append(_webhook("pull_request", _pull_payload(pull, "synchronize", head_sha=head, updated_at=at)))
        if pull.head_repo.split("/")[0] == ORG:
            requests.append(
                litellm_callbacks(
                    rng,
                    repo=pull.repo,
                    branch=pull.head_ref,
                    actor="reviewer-bot",
                    start=pull.created_at + timedelta(minutes=30),
                    calls=rng.randint(2, 8),
                    prefix=f"llm-{pull.repo}-{pull.number}",
                )
            )
        review_state = "changes_requested" if rng.random() < 0.35 else "approved"
        reviewer = rng.choice([a for a in AUTHORS[:4] if a != pull.author])
        for round_index, state in enumerate([review_state, "approved"] if review_state != "approved" else ["approved"]):
            at = pull.created_at + (end - pull.created_at) * (0.5 + 0.2 * round_index)
            # A review's PR object is the PR as it was when the review was submitted.
            head_then = [sha for pushed, sha in heads if pushed <= at][-1]
            review_payload = _pull_payload(pull, "reviewed", head_sha=head_then, updated_at=at)
            requests.append(
                _webhook(
                    "pull_request_review",
                    {
                        "action": "submitted",
                        "installation": {"id": INSTALLATION_ID},
                        "repository": review_payload["repository"],
                        "pull_request": review_payload["pull_request"],
                        "review": {
                            "id": pull.number * 10 + round_index,
                            "state": state,
                            "submitted_at": iso(at),
                            "user": {"login": reviewer},
                        },
                    },
                )
            )
        if pull.closed_at is not None:
            requests.append(
                _webhook("pull_request", _pull_payload(pull, "closed", head_sha=head, updated_at=pull.closed_at))
            )
    # Spend that produced no PR: work on the default branch and on an abandoned experiment.
    for index, branch in enumerate(("main", "main", "spike/vector-search")):
        requests.append(
            litellm_callbacks(
                rng,
                repo=REPOS[index % 2],
                branch=branch,
                actor="alice",
                start=now - timedelta(days=3 + index),
                calls=rng.randint(4, 10),
                prefix=f"llm-unmatched-{index}",
            )
        )
    return requests + outcome_requests(now, pulls, rng)


def _review(pull: DemoPull, *, review_id: int, state: str, reviewer: str, at: datetime, head: str) -> Request:
    payload = _pull_payload(pull, "reviewed", head_sha=head, updated_at=at)
    review = {"id": review_id, "state": state, "submitted_at": iso(at), "user": {"login": reviewer}}
    return _webhook(
        "pull_request_review",
        {
            "action": "submitted",
            "installation": {"id": INSTALLATION_ID},
            "repository": payload["repository"],
            "pull_request": payload["pull_request"],
            "review": review,
        },
    )


def outcome_requests(now: datetime, pulls: list[DemoPull], rng: random.Random) -> list[Request]:
    """A PR through two rounds of requested changes, then the revert of the first merged PR of acme/widgets."""
    repo = REPOS[0]
    number = max(p.number for p in pulls if p.repo == repo)
    opened = now - timedelta(days=6)
    loops = DemoPull(repo, number + 1, "Warm the cache on deploy", "alice", repo, "feat/cache-warmup", opened,
                     opened + timedelta(hours=40), True, 180, 40)  # fmt: skip
    requests = [
        claude_code_export(rng, pull=loops, session="cc-loops-0", start=opened - timedelta(hours=3), calls=20),
        _webhook("pull_request", _pull_payload(loops, "opened", head_sha=sha(rng), updated_at=opened)),
    ]
    head = sha(rng)
    # Each verdict is followed by work answering it: two rounds of changes, then a little after the approval.
    for index, (hours, state) in enumerate(((4, "changes_requested"), (16, "changes_requested"), (30, "approved"))):
        at = opened + timedelta(hours=hours)
        requests.append(_review(loops, review_id=9_000 + index, state=state, reviewer="carol", at=at, head=head))
        work = claude_code_export(rng, pull=loops, session=f"cc-loops-{index + 1}", start=at + timedelta(minutes=20),
                                  calls=(18, 12, 3)[index])  # fmt: skip
        head = sha(rng)
        push = _pull_payload(loops, "synchronize", head_sha=head, updated_at=at + timedelta(hours=2))
        requests += [work, _webhook("pull_request", push)]
    assert loops.closed_at is not None
    requests.append(_webhook("pull_request", _pull_payload(loops, "closed", head_sha=head, updated_at=loops.closed_at)))

    reverted = next(p for p in pulls if p.repo == repo and p.merged)
    merged_at = reverted.closed_at or now
    start = max(merged_at + timedelta(days=1), now - timedelta(days=3))
    revert = DemoPull(repo, number + 2, f'Revert "{reverted.title}"', "dave", repo, f"revert-{reverted.number}",
                      start, start + timedelta(hours=3), True, reverted.deletions, reverted.additions)  # fmt: skip
    body = f"Reverts {repo}#{reverted.number}\n\nThe cache served stale prices."
    head = sha(rng)
    requests += [
        claude_code_export(rng, pull=revert, session="cc-revert", start=start - timedelta(hours=1), calls=4),
        _webhook("pull_request", _pull_payload(revert, "opened", head_sha=head, updated_at=start, body=body)),
        _webhook(
            "pull_request",
            _pull_payload(revert, "closed", head_sha=head, updated_at=start + timedelta(hours=3), body=body),
        ),
    ]
    return requests
