"""`POST /github/webhook`: verify, record the delivery and its job in one transaction, answer fast.

The work happens in the worker; this route only decides whether a delivery needs any (202 queued, or 200 with
the reason it was ignored). A redelivery (same X-GitHub-Delivery) is a no-op.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app import jobs, metrics
from app.db import utcnow
from app.deps import ERROR_SCHEMA, SessionFactoryDep, SettingsDep, decode_content, refuse_declared_size
from app.events import Ignored, loads, parse_event

router = APIRouter(tags=["github"])
# GitHub caps webhook payloads at 25 MB.
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
# A delivery's body waits for its signature in memory up to this size, and on disk past it.
SPOOL_IN_MEMORY_BYTES = 256 * 1024


async def read_signed_body(request: Request, *, secret: str) -> bytes:
    """The body of a delivery whose X-Hub-Signature-256 is valid; 401 otherwise, 413 past GitHub's 25 MB.

    Anyone can post here, so the body is not held in memory before it is known to come from GitHub: the HMAC
    is computed as the body streams into a temporary file that stays in memory only while it is small, and the
    body is read back once the signature matches. A request without a signature is refused before its body.
    """
    signature = (request.headers.get("x-hub-signature-256") or "").strip()
    if not signature.startswith("sha256="):
        raise HTTPException(status_code=401, detail="missing or invalid X-Hub-Signature-256")
    refuse_declared_size(request, limit=MAX_WEBHOOK_BYTES)
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_WEBHOOK_BYTES:
                raise HTTPException(status_code=413, detail=f"body is larger than {MAX_WEBHOOK_BYTES} bytes")
            mac.update(chunk)
            spool.write(chunk)
        if not hmac.compare_digest("sha256=" + mac.hexdigest(), signature):
            raise HTTPException(status_code=401, detail="missing or invalid X-Hub-Signature-256")
        spool.seek(0)
        body = spool.read()
    return decode_content(request, body, limit=MAX_WEBHOOK_BYTES)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answer(status: str, field: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", field],
        "properties": {"status": {"type": "string", "enum": [status]}, field: {"type": "string"}},
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": description}


@router.post(
    "/github/webhook",
    summary="GitHub App webhooks",
    status_code=202,
    responses={
        200: {
            "description": "Ignored (the reason says why), or a redelivery",
            "content": _json(_answer("ignored", "reason")),
        },
        202: {"description": "Queued", "content": _json(_answer("queued", "delivery"))},
        400: {"description": "Missing headers or unreadable payload", "content": _json(ERROR_SCHEMA)},
        401: {"description": "Missing or wrong X-Hub-Signature-256", "content": _json(ERROR_SCHEMA)},
        413: {"description": "Body over 25 MB (GitHub's own limit)", "content": _json(ERROR_SCHEMA)},
        503: {"description": "No webhook secret configured", "content": _json(ERROR_SCHEMA)},
    },
    # For the OpenAPI schema only: the route reads the raw body (the signature is over its exact bytes).
    openapi_extra={
        "parameters": [
            _header("X-GitHub-Event", "the event name: pull_request, pull_request_review, push, installation, …"),
            _header("X-GitHub-Delivery", "the delivery id (a redelivery carries the same one)"),
            _header("X-Hub-Signature-256", "sha256=<HMAC-SHA256 of the body with the webhook secret>"),
        ],
        "requestBody": {"required": True, "content": _json({"type": "object"})},
    },
)
async def receive_webhook(request: Request, factory: SessionFactoryDep, settings: SettingsDep) -> JSONResponse:
    if settings.github_webhook_secret is None:
        raise HTTPException(status_code=503, detail="TOKENTRAIL_GITHUB_WEBHOOK_SECRET is not set: webhooks refused")
    body = await read_signed_body(request, secret=settings.github_webhook_secret.get_secret_value())
    event = request.headers.get("x-github-event", "").strip()
    delivery_id = request.headers.get("x-github-delivery", "").strip()
    if not event or not delivery_id or len(delivery_id) > 100:
        raise HTTPException(status_code=400, detail="X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        payload = loads(body)
        parse_event(event, payload, now=utcnow())
    except Ignored as ignored:
        metrics.WEBHOOKS.inc(event, "ignored")
        return JSONResponse({"status": "ignored", "reason": ignored.reason}, status_code=200)
    except RecursionError:
        # json.loads gives up on deep nesting with a RecursionError; no GitHub event is shaped like that.
        raise HTTPException(status_code=400, detail="payload is nested too deeply to read") from None
    action = payload.get("action")
    # Kept for reading the table only (the worker re-parses the payload): an action the VARCHAR(64) column or
    # PostgreSQL text (no NUL) cannot hold would fail the insert with a 500, so it is stored as None.
    if not isinstance(action, str) or len(action) > 64 or "\x00" in action:
        action = None
    stored = await run_in_threadpool(
        jobs.record_delivery, factory, delivery_id=delivery_id, event=event, action=action, body=body
    )
    metrics.WEBHOOKS.inc(event, "queued" if stored else "redelivery")
    if not stored:
        return JSONResponse({"status": "ignored", "reason": "delivery already received"}, status_code=200)
    request.app.state.wake_worker()
    return JSONResponse({"status": "queued", "delivery": delivery_id}, status_code=202)
