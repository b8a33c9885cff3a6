"""Ingest API: `POST /v1/usage` and `POST /v1/ingest/{source}`. Read the body within limits, parse it with the
source's pure parser, check tenancy, price, and store — committed before the response says "accepted"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from app import batch_size, metrics, store
from app.agent_state import BatchState, fill_commits
from app.attribution import Attribution, attribution_from_headers
from app.db import utcnow
from app.deps import ERROR_SCHEMA, IdentityDep, SessionFactoryDep, SettingsDep, read_body
from app.parsing import load_items
from app.pricing import price_nanousd
from app.records import SOURCES, ParsedBatch, PayloadError, Rejection, UsageRecord, limit_violation
from app.sources import FORMATS, Format, otlp_proto
from app.sources.agent_events import waits_for_session
from app.sources.canonical import InexactNumber
from app.tokens import TokenIdentity

router = APIRouter(tags=["ingest"])

ACTOR_HEADER = "x-tokentrail-actor"
MAX_ACTOR_CHARS = 255


# Up to this size a body is decoded whole before its items are counted: even one of empty objects (the worst
# case, ~25 bytes of memory per byte of body) stays within tens of MB, and orjson reads it in milliseconds.
DECODE_FIRST_BYTES = 1024 * 1024

_JSON_TYPES = frozenset({"", "application/json", "text/json", "text/plain"})
_NDJSON_MARKS = ("ndjson", "jsonl", "json-seq", "jsonlines")
_ACCEPTED = "JSON (application/json) or NDJSON (application/x-ndjson)"


def body_format(request: Request) -> bool:
    """Whether the body is NDJSON (True) or JSON (False), from its Content-Type; 415 for any other type."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return False
    if any(mark in media_type.rpartition("/")[2] for mark in _NDJSON_MARKS):
        return True
    accepted = _ACCEPTED + (", or OTLP protobuf (application/x-protobuf)" if "/otlp/" in request.url.path else "")
    raise HTTPException(status_code=415, detail=f"unsupported content type {content_type.strip()!r}: send {accepted}")


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "rejected": [{"index": r.index, "error": r.error} for r in sorted(self.rejected, key=lambda r: r.index)],
        }


@dataclass(slots=True)
class Admitted:
    """The records of a batch that may be stored, with their prices (nano-dollars), and the ones refused by index."""

    records: list[UsageRecord] = field(default_factory=list)
    prices: list[tuple[int | None, bool]] = field(default_factory=list)
    refused: list[Rejection] = field(default_factory=list)


def admit(batch: ParsedBatch, *, owner: str, fallback: Attribution, now: datetime, check_text: bool = True) -> Admitted:
    """Fill attribution from the request's headers, then keep the records that may be stored, priced.

    - Client attribution is a claim, never an authorisation (DESIGN §2): only records of the caller's own
      repositories are kept. A record that names no repository cannot be attributed to any tenant, so it is
      refused with the way to fix it rather than stored where no one sees it.
    - DESIGN §2's limits hold on every database: times, text lengths, counts and the cost (reported or computed).
    - With `check_text`, a record whose text the database cannot store (NUL, lone surrogates) is refused too.
    """
    admitted = Admitted()
    records, prices, refused = admitted.records, admitted.prices, admitted.refused
    positions = _record_positions(batch)
    fill = not fallback.is_empty()
    own_prefix = owner + "/"  # repositories are stored lower-case as "owner/name"
    for position, record in zip(positions, batch.records, strict=True):
        if fill:
            record = record.with_attribution(fallback)
        repo = record.attribution.repo
        if repo is None:
            if not waits_for_session(record):  # agent telemetry waits for its session's file (app.session_join)
                refused.append(
                    Rejection(position, "no repository: set repo, or send the x-vcs-repository-url-full header")
                )
                continue
        elif not repo.startswith(own_prefix):
            refused.append(Rejection(position, f"repository {repo} does not belong to {owner}"))
            continue
        if check_text and (problem := _unstorable_text(record)):
            refused.append(Rejection(position, problem))
            continue
        priced = price_nanousd(record)
        if problem := limit_violation(record, now=now, cost_nanousd=priced[0]):
            refused.append(Rejection(position, problem))
            continue
        records.append(record)
        prices.append(priced)
    return admitted


def _unstorable_text(record: UsageRecord) -> str | None:
    """Why the database cannot store this record's text, if it cannot: PostgreSQL text holds no NUL character,
    and neither database takes a lone surrogate (which JSON's \\ud800 escapes can produce)."""
    a = record.attribution
    for value in (record.id, record.source, record.provider, record.model, record.actor, record.agent,
                  record.session_id, a.repo, a.branch, a.commit, *record.call_ids):  # fmt: skip
        if value is None:
            continue
        if "\x00" in value:
            return "text cannot contain NUL characters"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text is not valid Unicode (a lone surrogate)"
    return None


def _may_hold_unstorable_text(body: bytes) -> bool:
    """A cheap look at the raw body: NUL and surrogates can only come from a NUL byte, a \\u escape, or the bytes
    of an encoded surrogate (0xED 0xA0-0xBF, which json.loads lets through). Most bodies have none of them."""
    return b"\x00" in body or b"\\u" in body or b"\xed" in body


def _record_positions(batch: ParsedBatch) -> list[int]:
    """The payload index of each parsed record (parsers record it with ParsedBatch.add)."""
    if len(batch.positions) == len(batch.records):
        return batch.positions
    # A parser that appended records directly: number them after the rejected indexes, in order.
    taken = {r.index for r in batch.rejected}
    positions: list[int] = []
    candidate = 0
    for _ in batch.records:
        while candidate in taken:
            candidate += 1
        positions.append(candidate)
        candidate += 1
    return positions


def _too_many(max_records: int) -> HTTPException:
    detail = f"batch has more than {max_records} records; the limit is {max_records}"
    return HTTPException(status_code=413, detail=detail)


def _parse(body: bytes, *, format: Format, ndjson: bool, max_records: int) -> ParsedBatch:
    """The batch, refused with a 413 before any record is examined when it holds more than `max_records` items.

    A body small enough to decode whole at no risk (DECODE_FIRST_BYTES) of a format with an items parser is
    decoded once with orjson and its items counted; any other is counted on its raw text first (app.batch_size),
    so that a hostile 10 MB body costs at most `max_records + 1` small decodes.
    """
    if format.parse_items is not None and len(body) <= DECODE_FIRST_BYTES:
        try:
            items = load_items(body, ndjson=ndjson, fast=True)
            if len(items) > max_records:
                raise _too_many(max_records)
            return format.parse_items(items)
        except InexactNumber:
            pass  # an integer beyond 64 bits: decoded again exactly below
    counted = (
        0
        if format.shape is None
        else batch_size.count_items(body, shape=format.shape, ndjson=ndjson, limit=max_records)
    )
    if counted > max_records:
        raise _too_many(max_records)
    return format.parse(body, ndjson=ndjson)


def ingest(
    body: bytes,
    *,
    format: Format,
    ndjson: bool,
    identity: TokenIdentity,
    fallback: Attribution,
    factory: Any,
    max_records: int,
    fallback_actor: str | None = None,
    protobuf: bool = False,
) -> IngestResult:
    """Parse, check, price and store one batch (runs in a worker thread: it blocks on the database)."""
    if protobuf and format.otlp_signal is not None:
        # Decoded, counted against the limit before any item is converted, then read as its OTLP/JSON document.
        try:
            message = otlp_proto.decode(body, format.otlp_signal)
        except PayloadError as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        if otlp_proto.count_items(message, format.otlp_signal) > max_records:
            raise _too_many(max_records)
        body, ndjson = otlp_proto.to_json(message), False
    try:
        batch = _parse(body, format=format, ndjson=ndjson, max_records=max_records)
    except PayloadError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    except RecursionError:
        # json.loads (and anything walking what it built) gives up on deep nesting with a RecursionError.
        raise HTTPException(status_code=400, detail="body is nested too deeply to read") from None
    total = len(batch.records) + len(batch.rejected) + batch.skipped
    if total > max_records:
        raise HTTPException(status_code=413, detail=f"batch has {total} records; the limit is {max_records}")
    check_text = _may_hold_unstorable_text(body)
    owner = identity.owner
    if fallback_actor is not None:
        batch.records = [r if r.actor else replace(r, actor=fallback_actor) for r in batch.records]
    admitted = admit(batch, owner=owner, fallback=fallback, now=utcnow(), check_text=check_text)
    state = None
    if batch.cumulative or batch.commits or format.otlp_signal is not None:
        state = BatchState(owner, batch.cumulative, fill_commits(batch.commits, fallback))
    written = store.store_usage(
        factory,
        records=admitted.records,
        prices=admitted.prices,
        owner=owner,
        share_upstream=identity.share_upstream,
        prepare=state.prepare if state is not None and (admitted.records or batch.commits) else None,
    )
    return IngestResult(
        accepted=written.accepted,
        duplicates=written.duplicates,
        skipped=batch.skipped,
        rejected=[*batch.rejected, *admitted.refused],
    )


def header_actor(headers: Mapping[str, str]) -> str | None:
    """Who ran the agent, from `x-tokentrail-actor` (`tokentrail import` sends the checkout's git e-mail): it fills
    the actor of every record that names none, as the x-vcs-* headers fill attribution."""
    actor = headers.get(ACTOR_HEADER, "").strip()
    if len(actor) > MAX_ACTOR_CHARS:
        raise HTTPException(status_code=400, detail=f"{ACTOR_HEADER} is longer than {MAX_ACTOR_CHARS} characters")
    return actor or None


async def _handle(
    request: Request, format: Format, *, identity: TokenIdentity, factory: Any, settings: Any
) -> Response:
    protobuf = format.otlp_signal is not None and otlp_proto.is_protobuf(request.headers.get("content-type", ""))
    ndjson = False if protobuf else body_format(request)
    body = await read_body(request, limit=settings.max_body_bytes)
    result = await run_in_threadpool(
        ingest,
        body,
        format=format,
        ndjson=ndjson,
        identity=identity,
        fallback=attribution_from_headers(request.headers),
        fallback_actor=header_actor(request.headers),
        factory=factory,
        max_records=settings.max_batch_records,
        protobuf=protobuf,
    )
    metrics.RECORDS_INGESTED.inc(format.source, amount=result.accepted)
    metrics.RECORDS_DUPLICATE.inc(format.source, amount=result.duplicates)
    metrics.RECORDS_REJECTED.inc(format.source, amount=len(result.rejected))
    metrics.RECORDS_SKIPPED.inc(format.source, amount=result.skipped)
    if result.accepted:
        request.app.state.wake_worker()
    payload = result.as_json()
    status = 200
    if result.rejected and result.accepted == 0 and result.duplicates == 0 and result.skipped == 0:
        payload["detail"] = "no record of the batch could be accepted"
        status = 422
    if format.otlp_signal is not None and otlp_proto.wants_protobuf(request.headers.get("accept", ""), protobuf):
        first = "; ".join(f"{r['index']}: {r['error']}" for r in payload["rejected"][:3])
        answer = otlp_proto.export_response(format.otlp_signal, rejected=len(result.rejected), error_message=first)
        return Response(answer, status_code=status, media_type=otlp_proto.MEDIA_TYPE)
    return JSONResponse(payload, status_code=status)


def _make_endpoint(format: Format) -> Callable[..., Any]:
    async def endpoint(
        request: Request, identity: IdentityDep, factory: SessionFactoryDep, settings: SettingsDep
    ) -> Response:
        return await _handle(request, format, identity=identity, factory=factory, settings=settings)

    return endpoint


_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "duplicates", "skipped", "rejected"],
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
        "detail": {"type": "string"},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Batch stored: counts, and the bad records by index", "content": _json(_RESULT_SCHEMA)},
    400: {"description": "Body is not readable", "content": _json(ERROR_SCHEMA)},
    401: {"description": "Missing or invalid token", "content": _json(ERROR_SCHEMA)},
    413: {"description": "Body over 10 MB or batch over 10,000 records", "content": _json(ERROR_SCHEMA)},
    415: {
        "description": "Content-Type other than JSON or NDJSON (or, on the OTLP routes, application/x-protobuf), or "
        "Content-Encoding other than gzip or deflate",
        "content": _json(ERROR_SCHEMA),
    },
    422: {"description": "No record of the batch could be accepted", "content": _json(_RESULT_SCHEMA)},
}

# The request bodies, for the OpenAPI schema only: the endpoints read the raw body themselves.
_CANONICAL_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "timestamp", "model"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 255},
        "call_id": {"type": "string", "maxLength": 255},
        "source": {"type": "string", "enum": list(SOURCES)},
        "timestamp": {"type": "string", "format": "date-time"},
        "provider": {"type": "string"},
        "model": {"type": "string", "minLength": 1, "maxLength": 255},
        **{
            name: {"type": "integer", "minimum": 0}
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        },
        "cost_usd": {"anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}]},
        "repo": {"type": "string"},
        "branch": {"type": "string"},
        "commit": {"type": "string"},
        "pr": {"type": "integer"},
        **{name: {"type": "string"} for name in ("actor", "agent", "session_id")},
    },
}
_RECORDS = {"type": "array", "items": _CANONICAL_RECORD}
_NDJSON = {"application/x-ndjson": {"schema": {"type": "string"}}}


def _request_body(format: Format) -> dict[str, Any]:
    if format.path == "/v1/usage":
        wrapped = {"type": "object", "required": ["records"], "properties": {"records": _RECORDS}}
        return {"required": True, "content": {**_json({"anyOf": [_RECORDS, wrapped]}), **_NDJSON}}
    content = _json({"description": "the source's own payload (see the summary)"})
    if format.otlp_signal is not None:
        content[otlp_proto.MEDIA_TYPE] = {"schema": {"type": "string", "format": "binary"}}
    return {"required": True, "content": {**content, **_NDJSON} if format.ndjson else content}


def _responses(format: Format) -> dict[int | str, dict[str, Any]]:
    if format.otlp_signal is None:
        return _INGEST_RESPONSES
    # An OTLP exporter's protobuf request (or Accept: application/x-protobuf) gets the Export*ServiceResponse.
    binary = {otlp_proto.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
    return {
        status: {**answer, "content": {**answer["content"], **binary}} if status in (200, 422) else answer
        for status, answer in _INGEST_RESPONSES.items()
    }


# One route per format keeps each visible in the OpenAPI schema with its own summary.
for _format in FORMATS:
    router.add_api_route(
        _format.path,
        _make_endpoint(_format),
        methods=["POST"],
        summary=_format.summary,
        responses=_responses(_format),
        openapi_extra={"requestBody": _request_body(_format)},
    )
