"""Writing usage records: one bulk statement per batch, idempotent per owner (DESIGN §2).

Two rules make a record count once:
- **the same record again** — (owner, source, id) is the key: a redelivery with the same tokens writes nothing, a
  later, larger version (a streamed transcript line, a gateway log completed after the fact) replaces the figures;
- **the same call from another source** — records of one owner that share a provider id of the call (`usage_calls`)
  are one call: the first stored stays, a later report only fills in attribution the stored one lacks and is
  answered as a duplicate.

This is the hot path of the product (every model call of a company passes here), so it skips what costs per row:
rows are plain tuples sent through the driver's executemany (SQLite) or COPY (PostgreSQL; app.usage_write), not ORM
objects, and every lookup is one query per batch, never one per record. Batches without call ids (the canonical
API's usual shape) pay for none of the call bookkeeping. The keys of pruned records (`usage_keys`, app.retention)
still answer as duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import jobs, session_join
from app.attribution import Attribution
from app.daily_rollup import discount
from app.db import chunks, utcnow
from app.group_commit import group_for
from app.pricing import price_nanousd
from app.pull_rollup import refresh_pull_spend
from app.records import UsageRecord
from app.tables import USAGE, USAGE_CALLS, USAGE_KEYS
from app.usage_write import write_postgres, write_sqlite

_CALLS_INSERT = "INSERT INTO usage_calls (owner, call_id, usage_pk) VALUES ({}) ON CONFLICT DO NOTHING"


@dataclass(frozen=True, slots=True)
class Written:
    accepted: int
    duplicates: int


def _sqlite_time(moment: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime type reads back (always UTC here): "2026-10-01 12:00:07.000000".
    # isoformat is several times cheaper than strftime, and this runs once per record.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


Priced = tuple[int | None, bool]  # (cost in nano-dollars, reported by the source)


def _row(
    record: UsageRecord, priced: Priced, *, batch: _Batch, seen: set[str] | None, received_at: Any, sqlite: bool
) -> tuple[Any, ...]:
    attribution = record.attribution
    timestamp = _sqlite_time(record.timestamp) if sqlite else record.timestamp
    return (
        record.source, record.id, timestamp, record.provider, record.model, record.input_tokens,
        record.cache_read_tokens, record.cache_write_tokens, record.output_tokens, record.reasoning_tokens,
        priced[0], priced[1], batch.owner, attribution.repo, attribution.branch, attribution.commit,
        attribution.pr, record.actor, record.agent, record.session_id, received_at,
        record.call_ids[0] if record.call_ids else None, batch.share_upstream,
        ",".join(sorted(seen - {record.source}))[:255] or None if seen else None,
    )  # fmt: skip


@dataclass(slots=True)
class _Fill:
    """What a duplicate report adds to the record stored first: the attribution it lacks and the source."""

    attribution: Attribution
    sources: set[str] = field(default_factory=set)


def _keep_largest(records: Iterable[tuple[UsageRecord, Priced]]) -> list[tuple[UsageRecord, Priced]]:
    """One record per (source, id) within a batch: the one with the most tokens (a streamed message is written
    several times as it grows). A single statement may not touch the same row twice on PostgreSQL."""
    best: dict[tuple[str, str], tuple[UsageRecord, Priced]] = {}
    for item in records:
        key = (item[0].source, item[0].id)
        current = best.get(key)
        if current is None or item[0].total_tokens > current[0].total_tokens:
            best[key] = item
    return list(best.values())


def _fill(attribution: Attribution, extra: Attribution) -> Attribution:
    """The stored attribution with what it lacks taken from another report of the same call (explicit PR, then
    commit, then branch: every missing piece), when both name the same repository."""
    return attribution.filled_from(extra) if attribution.repo == extra.repo else attribution


@dataclass(slots=True)
class _Batch:
    """One request's records, deduplicated, ready to write: the rows and what the call ids decided."""

    owner: str
    share_upstream: bool
    items: list[tuple[UsageRecord, Priced]]
    # (source, id) of a record of the batch -> the sources of its duplicates in the same batch
    seen: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    fills: dict[int, _Fill] = field(default_factory=dict)  # stored pk -> what its duplicates add
    repos: set[str] = field(default_factory=set)  # repositories whose matching must run
    prepare: Any = None  # app.agent_state's BatchState.prepare: what earlier batches said, in this transaction


def _dedupe_calls_in_batch(batch: _Batch) -> None:
    """Records of the batch that share a call id with an earlier one of the batch: the first stays and takes the
    attribution the later ones add."""
    first_by_call: dict[str, int] = {}
    kept: list[tuple[UsageRecord, Priced]] = []
    for record, priced in batch.items:
        earlier = next((first_by_call[c] for c in record.call_ids if c in first_by_call), None)
        if earlier is None:
            for call_id in record.call_ids:
                first_by_call[call_id] = len(kept)
            kept.append((record, priced))
            continue
        first, first_priced = kept[earlier]
        batch.seen.setdefault((first.source, first.id), set()).add(record.source)
        merged = _fill(first.attribution, record.attribution)
        if merged != first.attribution:
            kept[earlier] = (replace(first, attribution=merged), first_priced)
    batch.items = kept


_ATTRIBUTION = (USAGE.c.repo, USAGE.c.branch, USAGE.c.commit, USAGE.c.pr)


def _stored_calls(session: Session, owner: str, call_ids: Sequence[str]) -> dict[str, Any]:
    """call id -> the stored record it belongs to (pk, source, record_id, attribution, also_seen_by); a call whose
    record was pruned (app.retention) keeps its id, with `source` None."""
    u, c = USAGE.c, USAGE_CALLS.c
    found: dict[str, Any] = {}
    for chunk in chunks(sorted(set(call_ids))):
        query = (
            sa.select(c.call_id, c.usage_pk.label("pk"), u.source, u.record_id, *_ATTRIBUTION, u.also_seen_by)
            .select_from(USAGE_CALLS.outerjoin(USAGE, u.pk == c.usage_pk))
            .where(c.owner == owner, c.call_id.in_(chunk))
        )
        found.update((row.call_id, row) for row in session.execute(query))
    return found


def _drop_stored_calls(session: Session, batch: _Batch) -> None:
    """Records whose call is already stored as another record: duplicates that only fill in attribution."""
    stored = _stored_calls(session, batch.owner, [c for record, _ in batch.items for c in record.call_ids])
    if not stored:
        return
    kept: list[tuple[UsageRecord, Priced]] = []
    for record, priced in batch.items:
        row = next((stored[c] for c in record.call_ids if c in stored), None)
        if row is None or (row.source, row.record_id) == (record.source, record.id):
            kept.append((record, priced))  # a new call, or this very record sent again
            continue
        if row.source is None:
            continue  # a call of a pruned day: counted once already, nothing left to fill in
        fill = batch.fills.get(row.pk)
        if fill is None:
            have = Attribution(repo=row.repo, branch=row.branch, commit=row.commit, pr=row.pr)
            fill = batch.fills[row.pk] = _Fill(have, set(filter(None, (row.also_seen_by or "").split(","))))
            fill.sources.add(row.source)  # marks the stored source; removed again when written
        fill.attribution = _fill(fill.attribution, record.attribution)
        fill.sources |= {record.source, *batch.seen.get((record.source, record.id), ())}
    batch.items = kept


def _apply_fills(session: Session, batch: _Batch, stored: dict[int, Any]) -> None:
    """Write what duplicates added to the records stored first; one whose attribution grew is matched again."""
    u = USAGE.c
    regrouped: set[tuple[str, int]] = set()  # PRs whose by-source figures moved: their rollup is rewritten
    for pk, fill in batch.fills.items():
        row = stored[pk]
        seen = sorted(fill.sources - {row.source})
        values: dict[str, Any] = {"also_seen_by": ",".join(seen)[:255] or None}
        have = Attribution(repo=row.repo, branch=row.branch, commit=row.commit, pr=row.pr)
        if fill.attribution != have:
            values.update(branch=fill.attribution.branch, commit=fill.attribution.commit, pr=fill.attribution.pr)
            values["matched_at"] = None
            batch.repos.add(row.repo)
        elif values["also_seen_by"] == row.also_seen_by:
            continue
        session.execute(sa.update(USAGE).where(u.pk == pk).values(**values))
        if values["also_seen_by"] != row.also_seen_by and row.pr_repo is not None and row.pr_number is not None:
            regrouped.add((row.pr_repo, row.pr_number))
    refresh_pull_spend(session, regrouped)


def _fill_rows(session: Session, pks: Iterable[int]) -> dict[int, Any]:
    u = USAGE.c
    rows: dict[int, Any] = {}
    for chunk in chunks(sorted(pks)):
        query = sa.select(
            u.pk, u.source, u.repo, u.branch, u.commit, u.pr, u.also_seen_by, u.pr_repo, u.pr_number
        ).where(u.pk.in_(chunk))
        rows.update((row.pk, row) for row in session.execute(query))
    return rows


def _keys_present(session: Session, owner: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(source, record id) -> pk of the records of `owner` already stored."""
    u = USAGE.c
    present: dict[tuple[str, str], int] = {}
    by_source: dict[str, set[str]] = {}
    for source, record_id in keys:
        by_source.setdefault(source, set()).add(record_id)
    # Each lookup walks the (owner, source, record_id) unique index: one query per source of the batch.
    for source, record_ids in by_source.items():
        for chunk in chunks(sorted(record_ids)):
            query = sa.select(u.pk, u.record_id).where(u.owner == owner, u.source == source, u.record_id.in_(chunk))
            present.update(((source, r.record_id), r.pk) for r in session.execute(query))
    return present


def _drop_pruned(session: Session, batch: _Batch) -> None:
    """SQLite: records whose key outlived their pruned record (`usage_keys`, app.retention) are duplicates, never
    stored again. (On PostgreSQL `usage_keys` holds every record's key and the write itself finds them,
    app.usage_write.)"""
    k = USAGE_KEYS.c
    by_source: dict[str, set[str]] = {}
    for record, _ in batch.items:
        by_source.setdefault(record.source, set()).add(record.id)
    pruned: set[tuple[str, str]] = set()
    for source, record_ids in by_source.items():
        for chunk in chunks(sorted(record_ids)):
            query = sa.select(k.record_id).where(k.owner == batch.owner, k.source == source, k.record_id.in_(chunk))
            pruned.update((source, record_id) for (record_id,) in session.execute(query))
    if pruned:
        batch.items = [(record, priced) for record, priced in batch.items if (record.source, record.id) not in pruned]


def _map_calls(session: Session, batch: _Batch, before: dict[tuple[str, str], int]) -> int:
    """Record the call ids of the records just written. When another request stored the same call first (two
    transactions at once on PostgreSQL), the record of this one that is new is removed again and counted as a
    duplicate: returns how many were."""
    with_calls = [record for record, _ in batch.items if record.call_ids]
    if not with_calls:
        return 0
    pks = _keys_present(session, batch.owner, [(r.source, r.id) for r in with_calls])
    with_calls = [r for r in with_calls if (r.source, r.id) in pks]  # not a pruned record sent again (PostgreSQL)
    if not with_calls:
        return 0
    rows = [(batch.owner, call_id, pks[(r.source, r.id)]) for r in with_calls for call_id in r.call_ids]
    connection = session.connection()
    marks = "?, ?, ?" if connection.dialect.name == "sqlite" else "%s, %s, %s"
    connection.exec_driver_sql(_CALLS_INSERT.format(marks), rows)
    if connection.dialect.name == "sqlite":
        return 0  # one writer at a time: the lookup before the insert saw every stored call
    owners = _stored_calls(session, batch.owner, [c for r in with_calls for c in r.call_ids])
    lost = 0
    for record in with_calls:
        pk = pks[(record.source, record.id)]
        winner = next((owners[c].pk for c in record.call_ids if c in owners and owners[c].pk != pk), None)
        if winner is not None and (record.source, record.id) not in before:
            session.execute(sa.delete(USAGE_CALLS).where(USAGE_CALLS.c.usage_pk == pk))
            discount(session, USAGE.c.pk == pk)  # out of the daily rollup, which a plain DELETE leaves alone
            session.execute(sa.delete(USAGE).where(USAGE.c.pk == pk))
            lost += 1
    return lost


def _write_batch(session: Session, batch: _Batch) -> int:
    """Write one request's batch in the caller's transaction; returns the rows inserted or grown."""
    if batch.prepare is not None:
        batch.items, batch.repos = batch.prepare(session, batch.items, batch.repos)
    sqlite = session.get_bind().dialect.name == "sqlite"
    batch.items, parked, released = session_join.join(session, batch.owner, batch.items)
    _dedupe_calls_in_batch(batch)  # after the join has numbered the calls agents name by their token counts
    if sqlite:
        _drop_pruned(session, batch)
    has_calls = any(record.call_ids for record, _ in batch.items)
    before: dict[tuple[str, str], int] = {}
    if has_calls:
        _drop_stored_calls(session, batch)
        before = _keys_present(session, batch.owner, [(r.source, r.id) for r, _ in batch.items if r.call_ids])
    received_at = _sqlite_time(utcnow()) if sqlite else utcnow()
    rows = [
        _row(record, priced, batch=batch, seen=batch.seen.get((record.source, record.id)), received_at=received_at,
             sqlite=sqlite)
        for record, priced in batch.items
    ]  # fmt: skip
    written = (write_sqlite(session, rows) if sqlite else write_postgres(session, rows)) if rows else 0
    if has_calls:
        written -= _map_calls(session, batch, before)
    if batch.fills:
        _apply_fills(session, batch, _fill_rows(session, batch.fills))
    if written:
        batch.repos |= {record.attribution.repo for record, _ in batch.items if record.attribution.repo}
    # Matching to pull requests happens in the worker, under a per-repository lock (app.rematch); the job is
    # queued in the same transaction as the records, so neither exists without the other.
    jobs.enqueue_many(session, kind="match", keys=batch.repos)
    if released:  # records that waited for this batch's rollouts: written as their own batch, not counted in it
        _write_batch(session, _Batch(owner=batch.owner, share_upstream=batch.share_upstream, items=released))
    return written + parked


def store_usage(
    factory: sessionmaker[Session],
    *,
    records: Sequence[UsageRecord],
    owner: str,
    share_upstream: bool = False,
    prices: Sequence[Priced] | None = None,
    prepare: Any = None,
) -> Written:
    """Store one owner's batch durably; returns how many records were written and how many were duplicates.

    `prices` are the records' (cost in nano-dollars, reported) when the caller already priced them (ingest checks
    the computed cost against the limits first); otherwise they are priced here. `prepare`: app.agent_state.
    """
    if not records and prepare is None:
        return Written(accepted=0, duplicates=0)
    priced = list(prices) if prices is not None else [price_nanousd(record) for record in records]
    unique = _keep_largest(zip(records, priced, strict=True))
    if factory.kw["bind"].dialect.name == "sqlite":
        batch = _Batch(owner=owner, share_upstream=share_upstream, items=unique, prepare=prepare)
        accepted = group_for(factory, _write_batch).submit(factory, batch)
    else:
        accepted = _retrying_deadlocks(factory, lambda: _Batch(owner, share_upstream, list(unique), prepare=prepare))
    return Written(accepted=accepted, duplicates=len(records) - accepted)


_DEADLOCK_ATTEMPTS = 5


def _retrying_deadlocks(factory: sessionmaker[Session], new_batch: Any) -> int:
    """One transaction, tried again when PostgreSQL chose it as a deadlock's victim. The rows it writes lock shared
    rollup rows (a PR's, a day's) that matching, running at the same time, updates in statements of its own; each
    statement takes its rows in one order, but two transactions of several statements can still meet in a cycle.
    The victim was rolled back whole, so the batch is built again from the request's records and nothing is lost
    or written twice."""
    for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
        try:
            with factory() as session, session.begin():
                return _write_batch(session, new_batch())
        except (sa.exc.DBAPIError, psycopg.errors.DeadlockDetected) as error:
            # COPY goes through the driver itself, so its error arrives unwrapped
            cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
            if attempt == _DEADLOCK_ATTEMPTS or not isinstance(cause, psycopg.errors.DeadlockDetected):
                raise
    raise AssertionError("unreachable")
