"""Monthly partitions of `usage` on PostgreSQL (app.partitions, migration 0018): created ahead, the DEFAULT one for
odd times, whole months dropped by `tokentrail prune`, the migration up and down with data; and pruning in
batches (both databases)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from app import partitions
from app.db import alembic_config, create_db_engine, migrate
from app.retention import prune
from app.tables import USAGE, USAGE_KEYS
from tests.cli_runner import run_cli
from tests.desk import Desk, record
from tests.prune_scene import day, seed_history, views

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _where(desk: Desk, record_id: str) -> str:
    """The partition a record is stored in."""
    with desk.factory() as session:
        query = sa.text("SELECT tableoid::regclass::text FROM usage WHERE record_id = :id")
        return str(session.execute(query, {"id": record_id}).scalar_one())


def _months(engine: sa.Engine) -> list[date]:
    with engine.connect() as connection:
        return partitions.months(connection)


@POSTGRES_ONLY
def test_migrate_creates_this_month_and_the_next_two(database_url: str) -> None:
    engine = create_db_engine(database_url)
    this = datetime.now(tz=UTC).date().replace(day=1)
    ahead = [this, partitions.next_month(this), partitions.next_month(partitions.next_month(this))]
    assert set(ahead) <= set(_months(engine))
    with engine.begin() as connection:
        assert partitions.ensure_ahead(connection) == []  # idempotent
    later = date(this.year + 1, this.month, 1)
    with engine.begin() as connection:
        created = partitions.ensure_ahead(connection, today=later)
    assert created[0] == later and len(created) == 3
    engine.dispose()


@POSTGRES_ONLY
def test_two_workers_creating_the_same_months_at_once_both_succeed(database_url: str) -> None:
    engines = [create_db_engine(database_url) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def create(engine: sa.Engine) -> None:
        start.wait()
        with engine.begin() as connection:
            results.append(partitions.ensure_ahead(connection, today=date(2031, 1, 15)))

    threads = [threading.Thread(target=create, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(created) for created in results) == [0, 3]
    assert {date(2031, 1, 1), date(2031, 2, 1), date(2031, 3, 1)} <= set(_months(engines[0]))
    for engine in engines:
        engine.dispose()


@POSTGRES_ONLY
def test_the_default_partition_catches_months_without_one_and_a_new_month_adopts_them(desk: Desk) -> None:
    """A record of a month before the partitions the worker creates (a backfilled history) lands in DEFAULT."""
    assert desk.usage(record("far", at=datetime(2025, 5, 2, tzinfo=UTC)))["accepted"] == 1
    assert desk.usage(record("now", at=datetime.now(tz=UTC)))["accepted"] == 1
    assert _where(desk, "far") == partitions.DEFAULT
    assert _where(desk, "now").startswith("usage_p")
    engine = desk.factory.kw["bind"]
    with engine.begin() as connection:
        assert partitions.create_month(connection, date(2025, 5, 1))
    assert _where(desk, "far") == "usage_p202505"
    assert desk.usage(record("far", at=datetime(2025, 5, 2, tzinfo=UTC)))["duplicates"] == 1
    assert desk.usage(record("june", at=datetime(2025, 6, 2, tzinfo=UTC)))["accepted"] == 1
    with engine.begin() as connection:
        assert partitions.adopt_default(connection) == [date(2025, 6, 1)]  # a history loaded in bulk
    assert _where(desk, "june") == "usage_p202506"


@POSTGRES_ONLY
def test_prune_drops_whole_months_and_says_so(desk: Desk, database_url: str) -> None:
    engine = desk.factory.kw["bind"]
    with engine.begin() as connection:
        for month in (8, 9, 10):
            partitions.create_month(connection, date(2026, month, 1))
    seed_history(desk)
    desk.usage(record("odd", at=datetime(2025, 3, 31, tzinfo=UTC), branch="old"))  # the DEFAULT partition
    before = views(desk)
    dry = run_cli("prune", "--before", "2026-10-15", "--dry-run", database_url=database_url)
    assert "would remove 5 usage records before 2026-10-01 (2 monthly partitions" in dry.stdout, dry.stderr
    assert date(2026, 8, 1) in _months(engine)
    done = run_cli("prune", "--before", "2026-10-15", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "2026-10-15 is not the first of a month: only whole months are pruned, before 2026-10-01" in done.stdout
    assert "removed 5 usage records before 2026-10-01 (2 monthly partitions: usage_p202608, usage_p202609)" in (
        done.stdout
    )
    assert date(2026, 8, 1) not in _months(engine) and date(2026, 10, 1) in _months(engine)
    assert views(desk) == before
    with desk.factory() as session:
        left = set(session.execute(sa.select(USAGE.c.record_id)).scalars())
    assert left == {"a4", "a5"}


def test_prune_in_batches_carries_every_batch(desk: Desk) -> None:
    seed_history(desk)
    before = views(desk)
    engine = desk.factory.kw["bind"]
    pruned = prune(engine, date(2026, 10, 1), batch=1)
    assert pruned.records == 4 and pruned.pulls == {("acme/widgets", 12)}
    assert views(desk) == before
    with desk.factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one() == 2


@POSTGRES_ONLY
def test_migration_down_and_up_again_with_data(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    desk.usage(record("odd", at=datetime(2025, 3, 31, tzinfo=UTC), branch="old"))
    before = views(desk)
    config = alembic_config(database_url)
    command.downgrade(config, "0016")
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        assert not partitions.is_partitioned(connection)
        assert "usage_keys" not in sa.inspect(connection).get_table_names()
        assert connection.execute(sa.text("SELECT COUNT(*) FROM usage")).scalar_one() == 7
        unique = {c["name"] for c in sa.inspect(connection).get_unique_constraints("usage")}
    assert unique == {"uq_usage_owner_source_record_id"}
    migrate(database_url)
    with engine.connect() as connection:
        assert partitions.is_partitioned(connection)
        assert connection.execute(sa.select(sa.func.count()).select_from(USAGE_KEYS)).scalar_one() == 7
    assert {date(2025, 3, 1), date(2026, 8, 1)} <= set(_months(engine))  # the months of the rows stored
    assert _where(desk, "odd") == "usage_p202503"
    engine.dispose()
    assert views(desk) == before
    assert desk.usage(record("a4", at=day(10, 3)))["duplicates"] == 1
    assert desk.usage(record("a6", at=day(11, 3)))["accepted"] == 1


@POSTGRES_ONLY
def test_the_downgrade_refuses_to_drop_carried_totals(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    prune(desk.factory.kw["bind"], date(2026, 10, 1))
    with pytest.raises(RuntimeError, match="usage_pruned holds the figures of pruned records"):
        command.downgrade(alembic_config(database_url), "0016")
