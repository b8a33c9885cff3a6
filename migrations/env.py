"""Alembic environment: the URL comes from the config (set by app.db.alembic_config) or TOKENTRAIL_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import app.github_models
import app.models  # noqa: F401
from app.db import create_db_engine
from app.partitions import include_object

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.settings import load_settings

    return load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(_url())
    try:
        with engine.connect() as connection:
            # Batch mode lets ALTER TABLE work on SQLite (it recreates the table).
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                compare_type=True,
                include_object=include_object,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:  # also when a migration refuses (0018's downgrade over pruned totals): no connection left open
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
