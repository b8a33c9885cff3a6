"""What an OTLP batch means against what earlier batches said: cumulative metrics become deltas, a session whose
events arrived is not counted again from its metrics, and a `git commit` moves a session's later calls to its
branch. Shell: runs inside the store's transaction (`store.store_usage(prepare=...)`), before the rows are written.

All state is per owner (`metric_series`, `agent_sessions`): another owner's same series or session ids are other
rows. Two batches of one series or session at once are serialised by the row they share: it is upserted first,
which on PostgreSQL holds its lock until the transaction ends (rows taken in sorted order, so no deadlock); SQLite
has one writer at a time.

**Events win over metrics.** Claude Code reports each call as an `api_request` event (exact tokens, request id,
per-call time) and the same spend again, aggregated, in its `claude_code.*` metrics. Where a session's events
arrived, its metric records are not counted: metric points of such a session are dropped as they arrive, and the
metric records stored before its first event are deleted when the events come (their pull requests refreshed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import jobs
from app.attribution import Attribution
from app.daily_rollup import discount
from app.db import as_utc, utcnow
from app.pricing import price_nanousd
from app.records import CumulativePoint, SessionCommit, UsageRecord
from app.tables import AGENT_SESSIONS, METRIC_SERIES, USAGE, USAGE_KEYS

Priced = tuple[int | None, bool]  # (cost in nano-dollars, reported by the source), as the store has it
Item = tuple[UsageRecord, Priced]
EVENT_SOURCE, METRIC_SOURCE = "otlp", "otlp-metrics"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Prepared:
    items: list[Item]
    repos: set[str] = field(default_factory=set)  # repositories whose stored records changed: match them again


@dataclass(frozen=True, slots=True)
class BatchState:
    """What a parsed OTLP batch carries besides its records."""

    owner: str
    cumulative: dict[str, CumulativePoint]
    commits: Sequence[SessionCommit]

    def prepare(self, session: Session, items: list[Item], repos: set[str]) -> tuple[list[Item], set[str]]:
        """The batch's records as they are to be written, and the repositories to match again with `repos`."""
        prepared = Prepared(items=list(items))
        if self.cumulative:
            prepared.items = _to_deltas(session, self.owner, prepared.items, self.cumulative)
        _sessions(session, self.owner, prepared, self.commits)
        return prepared.items, repos | prepared.repos


def _insert(session: Session, table: sa.Table) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


# -- cumulative sums -----------------------------------------------------------------------------------------------


def _to_deltas(session: Session, owner: str, items: list[Item], points: dict[str, CumulativePoint]) -> list[Item]:
    """Each cumulative point becomes what it adds over the series' previous point. A point no newer than the last
    one seen is a redelivery (dropped: answered as a duplicate); a changed start time or a smaller value is a
    restart, whose value is all new. A point that adds nothing is dropped too."""
    mine = [(record, priced) for record, priced in items if record.id in points and record.source == METRIC_SOURCE]
    if not mine:
        return items
    keys = sorted({points[record.id].series for record, _ in mine})
    now = utcnow()
    session.execute(
        _insert(session, METRIC_SERIES)
        .values(
            [
                {"owner": owner, "series": k, "start_nanos": -1, "time_nanos": -1, "value": "0", "updated_at": now}
                for k in keys
            ]
        )
        .on_conflict_do_nothing()
    )
    query = sa.select(METRIC_SERIES).where(METRIC_SERIES.c.owner == owner, METRIC_SERIES.c.series.in_(keys))
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(METRIC_SERIES.c.series).with_for_update()
    last = {row.series: (row.start_nanos, row.time_nanos, Decimal(row.value)) for row in session.execute(query)}
    converted: dict[str, Item | None] = {}
    for record, _priced in sorted(mine, key=lambda item: points[item[0].id].time_nanos):
        point = points[record.id]
        start, time, value = last[point.series]
        if point.time_nanos <= time:
            converted[record.id] = None  # seen already
            continue
        restarted = point.start_nanos != start or point.value < value
        added = point.value if restarted else point.value - value
        last[point.series] = (point.start_nanos, point.time_nanos, point.value)
        converted[record.id] = (
            None if added == 0 else _with_delta(record, point, added, since=None if restarted else time)
        )
    session.execute(
        sa.update(METRIC_SERIES)
        .where(METRIC_SERIES.c.owner == owner, METRIC_SERIES.c.series == sa.bindparam("key"))
        .values(start_nanos=sa.bindparam("start"), time_nanos=sa.bindparam("time"), value=sa.bindparam("total"),
                updated_at=now),
        [{"key": k, "start": s, "time": t, "total": str(v)} for k, (s, t, v) in last.items()],
    )  # fmt: skip
    result: list[Item] = []
    for record, priced in items:
        if record.id not in converted:
            result.append((record, priced))
        elif (delta := converted[record.id]) is not None:
            result.append(delta)
    return result


def _with_delta(record: UsageRecord, point: CumulativePoint, added: Decimal, *, since: int | None) -> Item:
    values: dict[str, Any] = {"cost_usd": added} if point.field == "cost_usd" else {point.field: int(added)}
    if since is not None:  # the interval this delta covers starts at the previous point
        values["timestamp"] = _from_nanos(since)
    delta = replace(record, **values)
    return delta, price_nanousd(delta)


def _from_nanos(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


# -- sessions ------------------------------------------------------------------------------------------------------


def _sessions(session: Session, owner: str, prepared: Prepared, commits: Sequence[SessionCommit]) -> None:
    with_events = {r.session_id for r, _ in prepared.items if r.source == EVENT_SOURCE and r.session_id}
    metric_sessions = {r.session_id for r, _ in prepared.items if r.source == METRIC_SOURCE and r.session_id}
    ids = sorted(with_events | metric_sessions | {commit.session_id for commit in commits})
    if not ids:
        return
    now = utcnow()
    table = AGENT_SESSIONS
    # Upsert every session of the batch, in order: this takes each row's lock before anything is read or deleted.
    insert = _insert(session, table).values(
        [{"owner": owner, "session_id": i, "has_events": i in with_events, "updated_at": now} for i in ids]
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.owner, table.c.session_id],
            set_={"has_events": table.c.has_events | insert.excluded.has_events, "updated_at": now},
        )
    )
    for commit in sorted(commits, key=lambda c: c.at):
        _record_commit(session, owner, commit)
    rows = {
        row.session_id: row
        for row in session.execute(sa.select(table).where(table.c.owner == owner, table.c.session_id.in_(ids)))
    }
    counted_from_events = {i for i, row in rows.items() if row.has_events}
    prepared.items = [
        (_on_branch(record, rows.get(record.session_id)), priced)
        for record, priced in prepared.items
        if not (record.source == METRIC_SOURCE and record.session_id in counted_from_events)
    ]
    if with_events:
        _drop_metric_records(session, owner, sorted(with_events), prepared)
    for commit in commits:
        _move_stored(session, owner, rows[commit.session_id], prepared)


def _record_commit(session: Session, owner: str, commit: SessionCommit) -> None:
    """The session is on this commit's branch from `at` on, unless a later commit is already known."""
    table = AGENT_SESSIONS
    a = commit.attribution
    session.execute(
        sa.update(table)
        .where(
            table.c.owner == owner,
            table.c.session_id == commit.session_id,
            sa.or_(table.c.branch_since.is_(None), table.c.branch_since <= commit.at),
        )
        .values(repo=a.repo, branch=a.branch, commit=a.commit, branch_since=commit.at)
    )


def _on_branch(record: UsageRecord, state: Any) -> UsageRecord:
    """A call of the session made after its last known commit works on that commit's branch."""
    if state is None or state.branch is None or state.branch_since is None:
        return record
    if as_utc(record.timestamp) < as_utc(state.branch_since):
        return record
    if state.repo is not None and record.attribution.repo not in (None, state.repo):
        return record
    moved = replace(record.attribution, branch=state.branch, commit=state.commit or record.attribution.commit)
    return record if moved == record.attribution else replace(record, attribution=moved)


def _drop_metric_records(session: Session, owner: str, ids: Sequence[str], prepared: Prepared) -> None:
    """Metric records stored before their session's events: no longer counted. Their PRs are refreshed."""
    u = USAGE.c
    where = sa.and_(u.owner == owner, u.source == METRIC_SOURCE, u.session_id.in_(ids))
    found = session.execute(sa.select(u.repo, u.pr_repo, u.pr_number).where(where)).all()
    if not found:
        return
    discount(session, where)  # out of the daily rollup first: a plain DELETE (pruning) would keep them there
    # Their keys go too: a record removed here was never counted, so the same one sent again is not a duplicate.
    keys = USAGE_KEYS.c
    stored = sa.select(u.record_id).where(where)
    session.execute(
        sa.delete(USAGE_KEYS).where(keys.owner == owner, keys.source == METRIC_SOURCE, keys.record_id.in_(stored))
    )
    session.execute(sa.delete(USAGE).where(where))
    prepared.repos |= {row.repo for row in found}
    _refresh(session, {(row.pr_repo, row.pr_number) for row in found if row.pr_number is not None})


def _move_stored(session: Session, owner: str, state: Any, prepared: Prepared) -> None:
    """Records of the session stored already, made after the commit: on its branch now, so matched again."""
    if state.branch is None or state.branch_since is None:
        return
    u = USAGE.c
    where = sa.and_(
        u.owner == owner,
        u.session_id == state.session_id,
        u.source.in_((EVENT_SOURCE, METRIC_SOURCE)),
        u.timestamp >= state.branch_since,
        sa.or_(u.branch.is_(None), u.branch != state.branch),
        *((u.repo == state.repo,) if state.repo is not None else ()),
    )
    moved = session.execute(sa.select(u.repo, u.pr_repo, u.pr_number).where(where)).all()
    if not moved:
        return
    values: dict[str, Any] = {"branch": state.branch, "matched_at": None}
    if state.commit is not None:
        values["commit"] = state.commit
    session.execute(sa.update(USAGE).where(where).values(**values))
    prepared.repos |= {row.repo for row in moved}
    _refresh(session, {(row.pr_repo, row.pr_number) for row in moved if row.pr_number is not None})


def _refresh(session: Session, pulls: Iterable[tuple[str, int]]) -> None:
    """A PR whose records went away or moved: its figures changed (the worker re-renders it)."""
    from app.worker import pull_key  # the worker's job key; imported here to keep the ingest path light

    for repo, number in sorted(pulls):
        jobs.enqueue(session, kind="refresh", key=pull_key(repo, number))


def fill_commits(commits: Sequence[SessionCommit], fallback: Attribution) -> list[SessionCommit]:
    """The request's x-vcs-* headers fill what a commit event lacks, as they do for records. A commit whose text
    the database cannot store (over DESIGN §2's lengths, NUL, a lone surrogate) is left out: it carries no usage."""
    filled = [replace(c, attribution=c.attribution.filled_from(fallback)) for c in commits]
    return [c for c in filled if _storable(c)]


def _storable(commit: SessionCommit) -> bool:
    texts = ((commit.session_id, 255), (commit.attribution.branch, 255), (commit.attribution.repo, 200))
    for text, limit in texts:
        if text is None:
            continue
        if len(text) > limit or "\x00" in text:
            return False
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True
