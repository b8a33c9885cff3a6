from __future__ import annotations

import sqlalchemy as sa

from app.tokens import hash_token
from tests.cli_runner import run_cli


def test_token_create_prints_the_token_alone_on_its_last_line(database_url: str) -> None:
    result = run_cli("token", "create", "--owner", "Acme", "--name", "ci", database_url=database_url)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("tt_") and " " not in token
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT owner, name, token_hash FROM ingest_tokens")).all()
    engine.dispose()
    assert rows == [("acme", "ci", hash_token(token))]  # only the hash is stored


def test_token_create_refuses_a_bad_owner(database_url: str) -> None:
    result = run_cli("token", "create", "--owner", "acme/widgets", database_url=database_url)
    assert result.returncode == 2
    assert "GitHub login" in result.stderr


def test_migrate_reports_bad_settings() -> None:
    result = run_cli("migrate", database_url="mysql://nope")
    assert result.returncode == 2
    assert "TOKENTRAIL_DATABASE_URL" in result.stderr
