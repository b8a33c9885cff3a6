"""FastAPI dependencies shared by the routes: settings, database sessions, and the caller's identity."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope, utcnow, write_lock
from app.oidc import ActionsIdentity
from app.periods import BOUND_HELP
from app.settings import Settings
from app.tokens import TokenIdentity, find_token, record_use

log = logging.getLogger("tokentrail")


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_session(factory: Annotated[sessionmaker[Session], Depends(get_sessionmaker)]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
    finally:
        try:
            session.close()
        except (DBAPIError, SQLAlchemyTimeoutError):
            # The database went away after the route had its answer (closing rolls back, which then fails):
            # the answer stands, and the broken connection is already discarded from the pool.
            log.warning("database unreachable while closing a session")


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status_code=401,
            detail="missing credentials: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def require_identity(request: Request, factory: SessionFactoryDep) -> TokenIdentity:
    """Whom the bearer token speaks for; 401 otherwise, and for a revoked token."""
    token = bearer_token(request)
    with factory() as session:
        found = find_token(session, token)
    if found is None or found.is_revoked:
        detail = "invalid token" if found is None else "this token was revoked"
        raise HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})
    if found.is_use_worth_recording(utcnow()):
        # A transaction of its own after the read: on SQLite, turning a read into a write could meet a newer
        # commit and fail instead of waiting.
        with write_lock(factory), session_scope(factory) as session:
            record_use(session, token_id=found.id)
    return TokenIdentity(owner=found.owner, share_upstream=found.share_upstream)


def require_owner(request: Request, factory: SessionFactoryDep) -> str:
    """The owner (GitHub login) the bearer token belongs to; 401 otherwise."""
    return require_identity(request, factory).owner


IdentityDep = Annotated[TokenIdentity, Depends(require_identity)]
OwnerDep = Annotated[str, Depends(require_owner)]


def own_owner(owner: str, *, caller: str) -> str:
    """`owner` lower-cased when the caller's token belongs to it; 403 otherwise (tenancy: DESIGN §2)."""
    if owner.lower() != caller:
        raise HTTPException(status_code=403, detail=f"this token belongs to {caller}, not {owner.lower()}")
    return owner.lower()


def require_actions_identity(request: Request, factory: SessionFactoryDep) -> ActionsIdentity:
    """The repository a GitHub Actions OIDC token proves to run for: verified against GitHub's JWKS, installed
    with the App, its ids matching what GitHub's webhooks told (DESIGN §8). 401/403 otherwise."""
    from app.oidc import OidcError, looks_like_jwt, refusal, verify_actions_token
    from app.repo_state import recorded_repository

    token = bearer_token(request)
    if not looks_like_jwt(token):
        raise HTTPException(
            status_code=401,
            detail="this endpoint takes the run's GitHub Actions OIDC token (permissions: id-token: write)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    settings: Settings = request.app.state.settings
    try:
        identity = verify_actions_token(token, jwks=request.app.state.jwks, audience=settings.audience)
    except OidcError as error:
        raise HTTPException(
            status_code=error.status, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    with factory() as session:
        reason = refusal(identity, recorded_repository(session, identity.repository))
    if reason is not None:
        raise HTTPException(status_code=403, detail=reason)
    return identity


def require_repo_reader(owner: str, repo: str, request: Request, factory: SessionFactoryDep) -> str:
    """`owner/name` when the caller may read that repository: an API token of its owner, or a GitHub Actions OIDC
    token of that very repository (`require_actions_identity`). 401/403 otherwise."""
    from app.oidc import looks_like_jwt

    full_name = f"{owner.lower()}/{repo.lower()}"
    if not looks_like_jwt(bearer_token(request)):
        own_owner(owner, caller=require_owner(request, factory))
        return full_name
    identity = require_actions_identity(request, factory)
    if identity.repository != full_name:
        raise HTTPException(status_code=403, detail=f"this OIDC token is for {identity.repository}, not {full_name}")
    return full_name


ActionsIdentityDep = Annotated[ActionsIdentity, Depends(require_actions_identity)]
RepoReaderDep = Annotated[str, Depends(require_repo_reader)]
# Report periods (`app.periods`), as query parameters.
Since = Annotated[str | None, Query(max_length=40, description=f"inclusive; {BOUND_HELP}")]
Until = Annotated[str | None, Query(max_length=40, description=f"exclusive; {BOUND_HELP}")]
# A pull request number as a path parameter: GitHub's are positive 32-bit integers, and so is the column.
PullNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="pull request number")]


# OpenAPI documentation of the errors these dependencies and the read routes answer with: `{"detail": "…"}`.
ERROR_SCHEMA = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        }
    },
}
_ERROR_CONTENT = {"application/json": {"schema": ERROR_SCHEMA}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid credentials", "content": _ERROR_CONTENT},
    403: {"description": "Another owner's or repository's data", "content": _ERROR_CONTENT},
    404: {"description": "Unknown pull request", "content": _ERROR_CONTENT},
}
# For routes that also refuse a readable but unacceptable value themselves (a reversed period, a bad limit).
INVALID_INPUT_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Invalid parameters: the validation errors, or what is wrong with a value",
        "content": {"application/json": {"schema": {"anyOf": [VALIDATION_ERROR_SCHEMA, ERROR_SCHEMA]}}},
    }
}


# -- request bodies: read within a limit, compressed ones inflated within the same limit -----------------------


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (never read whole first).

    gzip/deflate bodies (OTLP exporters compress) are inflated with the same limit on the inflated size.
    """
    refuse_declared_size(request, limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return decode_content(request, b"".join(chunks), limit=limit)


def refuse_declared_size(request: Request, *, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"body is larger than {limit} bytes")


def decode_content(request: Request, body: bytes, *, limit: int) -> bytes:
    """The body as sent before its Content-Encoding: gzip and deflate are inflated within `limit`."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in {"gzip", "deflate"}:
        return _inflate(body, gzip_format=encoding == "gzip", limit=limit)
    if encoding not in {"", "identity"}:
        raise HTTPException(status_code=415, detail=f"unsupported content-encoding {encoding!r}")
    return body


def _inflate(body: bytes, *, gzip_format: bool, limit: int) -> bytes:
    """Every member of a gzip body (concatenated members are one valid gzip file, as `cat a.gz b.gz` makes), or
    the one zlib stream of a deflate body, refused with 413 once the inflated size passes `limit`. A stream that
    is cut short or followed by anything but more members (or gzip's zero padding) is a 400: what cannot be read
    is refused, never dropped in silence."""
    pieces: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits=31 if gzip_format else 15)
        try:
            data = inflater.decompress(rest, limit + 1 - size)
        except zlib.error:
            if not pieces:
                raise HTTPException(status_code=400, detail="body is not valid compressed data") from None
            detail = f"body has data after gzip member {len(pieces)} that is not gzip"
            raise HTTPException(status_code=400, detail=detail) from None
        size += len(data)
        if size > limit or inflater.unconsumed_tail:
            raise HTTPException(status_code=413, detail=f"inflated body is larger than {limit} bytes")
        if not inflater.eof:
            raise HTTPException(status_code=400, detail="compressed body is truncated (its stream does not end)")
        pieces.append(data)
        rest = inflater.unused_data
        if gzip_format:
            rest = rest.lstrip(b"\x00")
        if not rest:
            return b"".join(pieces)
        if not gzip_format:
            raise HTTPException(status_code=400, detail="body has data after the end of its deflate stream")


# Media types of the JSON and NDJSON bodies every ingest endpoint reads (RFC 6839 `+json` suffixes included).


def csv_response(name: str, text: str) -> Response:
    """A CSV file download (the report exports, by token or from a signed-in browser)."""
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
