"""Migrations build the schema the models describe, on both databases, in one linear history."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import alembic_config, create_db_engine, migrate
from app.partitions import include_object


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        # The monthly partitions of usage and its dedupe key's move on PostgreSQL are app.partitions' to skip.
        opts = {"compare_type": True, "include_object": include_object}
        context = MigrationContext.configure(connection, opts=opts)
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_migrate_is_idempotent(database_url: str) -> None:
    migrate(database_url)
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert {"usage", "ingest_tokens", "alembic_version"} <= tables


def test_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
    assert len(scripts.get_bases()) == 1
