"""Storing one usage file a CI run uploads (`POST /v1/ingest/ci`): parsed for that run by `app.sources.ci_files`,
then checked, priced and stored like any ingest batch, under the run's repository owner."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import HTTPException

from app.attribution import Attribution, normalize_branch, normalize_commit
from app.deps import ERROR_SCHEMA
from app.ingest import IngestResult, ingest
from app.records import ParsedBatch
from app.repo_state import get_pull
from app.sources import Format
from app.sources.ci_files import KINDS, SOURCE, Run, detect, parse
from app.tokens import TokenIdentity

PATH = "/v1/ingest/ci"

_RESULT = {
    "type": "object",
    "required": ["accepted", "duplicates", "skipped", "rejected", "kind", "repo"],
    "properties": {
        **{name: {"type": "integer", "minimum": 0} for name in ("accepted", "duplicates", "skipped")},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "error"],
                "properties": {"index": {"type": "integer"}, "error": {"type": "string"}},
            },
        },
        "kind": {"type": "string"},
        "repo": {"type": "string"},
        "pr": {"type": ["integer", "null"]},
        "detail": {"type": "string"},
    },
}
_SCHEMA = {"schema": _RESULT}
_ERROR = {"application/json": {"schema": ERROR_SCHEMA}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "File stored: counts, the bad records by index",
        "content": {"application/json": {"schema": _RESULT}},
    },
    400: {"description": "Not a usage file Tokentrail reads, or unreadable", "content": _ERROR},
    401: {"description": "No GitHub Actions OIDC token, or one that proves nothing", "content": _ERROR},
    403: {"description": "The token's repository is not installed with the App", "content": _ERROR},
    404: {
        "description": "The upload names only a PR number, and the token's repository has no such PR known",
        "content": _ERROR,
    },
    413: {"description": "Body over 10 MB or over 10,000 records", "content": _ERROR},
    415: {"description": "Content-Encoding other than gzip or deflate", "content": _ERROR},
    422: {
        "description": "No record of the file could be accepted, or a bad query parameter",
        "content": {"application/json": {"schema": {}}},
    },
}


def file_kind(body: bytes, named: str | None) -> str:
    """The kind the Action named, else the one the content shows; 400 when neither tells."""
    if named:
        if named not in KINDS:
            raise HTTPException(status_code=400, detail=f"unknown kind {named!r}: one of {', '.join(KINDS)}")
        return named
    found = detect(body)
    if found is None:
        raise HTTPException(
            status_code=400,
            detail="not a usage file Tokentrail reads: expected a claude-code-action execution file, gh-aw's"
            " token-usage.jsonl, a Codex rollout or canonical NDJSON records",
        )
    return found


def with_pull_head(run: Run, *, factory: Any) -> Run:
    """The run with the head branch and SHA of its PR as the server knows them, when the upload names the PR by
    number alone: a run triggered by a comment (`issue_comment`) has no head in its event or its OIDC token.

    The server is the source of the head rather than the Action asking GitHub's API: it already holds the PR from
    its webhooks and its GitHub sync, so the job needs no `pull-requests: read` and no second credential, and the
    lookup is bound to the repository the OIDC token proves (the number alone can never reach another repository's
    PR). A number that repository has no known PR for is a 404 that says so: storing the records under it would
    leave them attributed to nothing the server can show. Blocks on the database: run it in a worker thread."""
    if run.pr is None or run.branch is not None or run.commit is not None:
        return run
    with factory() as session:
        row = get_pull(session, repo=run.repo, number=run.pr)
    if row is None:
        raise HTTPException(
            status_code=404,
            detail=f"Tokentrail knows no pull request {run.repo}#{run.pr}: the upload names it by number alone,"
            " and the records go only to a pull request of the token's repository that the App has seen",
        )
    return replace(run, branch=normalize_branch(row.head_ref), commit=normalize_commit(row.head_sha))


def store_file(
    body: bytes, *, kind: str, run: Run, owner: str, factory: Any, now: datetime, max_records: int
) -> IngestResult:
    """Runs in a worker thread: it blocks on the database. The records are the run owner's, never shared
    upstream: the token proves only this repository."""

    def parse_for_run(data: bytes, *, ndjson: bool = False) -> ParsedBatch:
        return parse(data, kind=kind, run=run, now=now)

    return ingest(
        body,
        format=Format(PATH, SOURCE, parse_for_run, None, "Usage files of agents that ran in CI"),
        ndjson=False,
        identity=TokenIdentity(owner=owner, share_upstream=False),
        fallback=Attribution(),
        factory=factory,
        max_records=max_records,
    )
