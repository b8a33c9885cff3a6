"""Sending chunks to `/v1/ingest/{source}`, or counting them locally for `--dry-run`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from app.attribution import Attribution
from app.local.transcripts import Chunk, SourceKind
from app.records import PayloadError

DEFAULT_SERVER = "http://127.0.0.1:8000"
NO_REPOSITORY = "no repository"
ACTOR_HEADER = "x-tokentrail-actor"


# --- uploading ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class UploadFailed(Exception):
    """One request failed; the import goes on with the next one."""


class ImportAborted(Exception):
    """Nothing more can succeed (server unreachable, token refused)."""


class Uploader(Protocol):
    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome: ...


def _headers(repo_url: str | None, actor: str | None = None) -> dict[str, str]:
    headers = {"x-vcs-repository-url-full": repo_url} if repo_url else {}
    return headers | ({ACTOR_HEADER: actor} if actor else {})


class HttpUploader:
    def __init__(self, server: str, token: str, *, client: httpx.Client | None = None, retries: int = 2) -> None:
        self.server = server.rstrip("/")
        self.client = client or httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0))
        self.token = token
        self.retries = retries

    def close(self) -> None:
        self.client.close()

    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/x-ndjson",
            **_headers(repo_url, chunk.actor),
        }
        body = b"".join(chunk.lines)
        url = self.server + source.endpoint
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(url, content=body, headers=headers)
            except httpx.ConnectError as error:
                raise ImportAborted(
                    f"cannot reach the server at {self.server} ({error}); is it running? "
                    "Set the address with --server or TOKENTRAIL_SERVER."
                ) from None
            except httpx.TransportError as error:
                if attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise UploadFailed(f"{type(error).__name__}: {error}") from None
            if response.status_code in (502, 503, 504) and attempt < self.retries:
                time.sleep(0.5 * 2**attempt)
                continue
            return _outcome(response)
        raise UploadFailed("retries exhausted")  # pragma: no cover - the loop always returns or raises


def _outcome(response: httpx.Response) -> Outcome:
    try:
        data = response.json()
    except ValueError:
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    if response.status_code in (401, 403):
        raise ImportAborted(
            f"the server refused the token ({response.status_code}: {detail or response.reason_phrase}); "
            "check --token or TOKENTRAIL_TOKEN"
        )
    # 422 is an answer too: every record of the batch was rejected, each with its reason.
    if response.status_code in (200, 422) and isinstance(data, dict) and "accepted" in data:
        rejected = [
            (int(item.get("index", -1)), str(item.get("error", "")))
            for item in data.get("rejected") or []
            if isinstance(item, dict)
        ]
        return Outcome(
            accepted=int(data.get("accepted") or 0),
            duplicates=int(data.get("duplicates") or 0),
            skipped=int(data.get("skipped") or 0),
            rejected=rejected,
        )
    text = detail if detail is not None else response.text[:200]
    raise UploadFailed(f"HTTP {response.status_code}: {text}")


class DryRunUploader:
    """Parses each request body locally with the server's own parser; uploads nothing."""

    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome:
        try:
            batch = source.parse(b"".join(chunk.lines), ndjson=True)
        except PayloadError as error:
            raise UploadFailed(f"unreadable batch: {error}") from None
        fallback = Attribution.parse(repo=repo_url)
        outcome = Outcome(skipped=batch.skipped, rejected=[(r.index, r.error) for r in batch.rejected])
        for position, record in zip(batch.positions, batch.records, strict=False):
            if record.with_attribution(fallback).attribution.repo is None:
                outcome.rejected.append((position, f"{NO_REPOSITORY}: set repo, or send the header"))
            else:
                outcome.accepted += 1
        return outcome
