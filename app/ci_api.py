"""`POST /v1/ingest/ci`: the companion Action uploads the usage files of agents that ran in the job (DESIGN §8).

Authenticated by the run's GitHub Actions OIDC token alone, which writes only its own repository: records go to
that repository and its owner, attributed to the run's PR, head branch and head SHA (`app.sources.ci_files`). A run
started by a comment names its PR by number only; its head comes from the PR the server knows
(`app.ci_upload.with_pull_head`). The body is one file as written by the agent (gzip allowed); `kind` names it when
its content does not tell.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app import metrics
from app.attribution import attribution_from_headers
from app.ci_upload import PATH, RESPONSES, file_kind, store_file, with_pull_head
from app.db import utcnow
from app.deps import ActionsIdentityDep, SessionFactoryDep, SettingsDep, read_body
from app.records import PayloadError
from app.sources.ci_files import KINDS, SOURCE, run_from_claims

router = APIRouter(tags=["ingest"])


@router.post(
    PATH,
    summary="Usage files of agents that ran in CI (the Action's usage-files), with the run's OIDC token",
    responses=RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {}}}}},
)
async def ingest_ci(
    request: Request,
    identity: ActionsIdentityDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    kind: Annotated[str | None, Query(description=f"one of {', '.join(KINDS)}; default: from the content")] = None,
) -> JSONResponse:
    body = await read_body(request, limit=settings.max_body_bytes)
    try:
        run = run_from_claims(
            identity.claims, repository=identity.repository, event=attribution_from_headers(request.headers)
        )
    except ValueError as error:
        raise HTTPException(status_code=401, detail=str(error)) from None
    found = file_kind(body, kind)
    run = await run_in_threadpool(with_pull_head, run, factory=factory)
    try:
        result = await run_in_threadpool(
            store_file,
            body,
            kind=found,
            run=run,
            owner=identity.owner,
            factory=factory,
            now=utcnow(),
            max_records=settings.max_batch_records,
        )
    except PayloadError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    metrics.RECORDS_INGESTED.inc(SOURCE, amount=result.accepted)
    metrics.RECORDS_DUPLICATE.inc(SOURCE, amount=result.duplicates)
    metrics.RECORDS_REJECTED.inc(SOURCE, amount=len(result.rejected))
    metrics.RECORDS_SKIPPED.inc(SOURCE, amount=result.skipped)
    if result.accepted:
        request.app.state.wake_worker()
    payload = {**result.as_json(), "kind": found, "repo": run.repo, "pr": run.pr}
    if result.rejected and not (result.accepted or result.duplicates or result.skipped):
        payload["detail"] = "no record of the file could be accepted"
        return JSONResponse(payload, status_code=422)
    return JSONResponse(payload)
