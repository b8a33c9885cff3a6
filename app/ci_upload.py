"""Storing one usage file a CI run uploads (`POST /v1/ingest/ci`): parsed for that run by `app.sources.ci_files`,
then checked, priced and stored like any ingest batch, under the run's repository owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException

from app.attribution import Attribution
from app.ingest import IngestResult, ingest
from app.records import ParsedBatch
from app.sources import Format
from app.sources.ci_files import KINDS, SOURCE, Run, detect, parse
from app.tokens import TokenIdentity

PATH = "/v1/ingest/ci"


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
