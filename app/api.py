"""Read API for the Action, the CLI and dashboards (DESIGN §9). Money is a decimal string."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from app.deps import ERROR_RESPONSES, INVALID_INPUT_RESPONSE, OwnerDep, SessionDep, own_owner
from app.periods import BadPeriod, utc_bound
from app.repo_usage import repo_usage

router = APIRouter(tags=["read"])


def authorize_repo(owner_param: str, repo_param: str, *, caller: str) -> str:
    """`owner/name` lower-cased, when the caller's token belongs to that owner; 403 otherwise."""
    return f"{own_owner(owner_param, caller=caller)}/{repo_param.lower()}"


@router.get(
    "/v1/repos/{owner}/{repo}/usage",
    summary="Usage of a repository, matched to a PR or not",
    responses={**{status: ERROR_RESPONSES[status] for status in (401, 403)}, **INVALID_INPUT_RESPONSE},
)
def get_repo_usage(
    owner: str,
    repo: str,
    caller: OwnerDep,
    session: SessionDep,
    branch: str | None = Query(default=None, max_length=255),
    since: datetime | None = Query(default=None, description="RFC 3339; inclusive"),
    until: datetime | None = Query(default=None, description="RFC 3339; exclusive"),
) -> dict[str, Any]:
    full_name = authorize_repo(owner, repo, caller=caller)
    try:
        # In UTC before they reach SQL: SQLite compares stored UTC text, so an offset would otherwise be ignored.
        since = None if since is None else utc_bound(since, text=since.isoformat())
        until = None if until is None else utc_bound(until, text=until.isoformat())
    except BadPeriod as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    return repo_usage(session, repo=full_name, branch=branch, since=since, until=until)
