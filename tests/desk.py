"""A desk to drive Tokentrail through its HTTP API the way its users do, in dry-run mode: tokens of several
owners, usage posted to the ingest endpoints, signed webhooks, and the worker run until the queue is empty.

The in-process worker thread is off: `settle()` runs every due job synchronously, so a test reads the state
after each step without waiting or sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.main import create_app
from app.settings import Settings
from app.tables import USAGE
from app.tokens import create_token
from tests.github_payloads import webhook_headers


@dataclass
class Desk:
    client: TestClient
    factory: sessionmaker[Session]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, owner: str, *, share_upstream: bool = False) -> str:
        key = f"{owner}+share" if share_upstream else owner
        if key not in self.tokens:
            with session_scope(self.factory) as session:
                self.tokens[key] = create_token(session, owner=owner, name="desk", share_upstream=share_upstream)
        return self.tokens[key]

    def post(
        self, path: str, payload: Any, *, owner: str = "acme", share_upstream: bool = False, **headers: str
    ) -> dict[str, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        auth = {"Authorization": f"Bearer {self.token(owner, share_upstream=share_upstream)}"}
        response = self.client.post(path, content=body, headers={**auth, **headers})
        assert response.status_code < 500, response.text
        answer: dict[str, Any] = response.json()
        answer["status_code"] = response.status_code
        return answer

    def usage(self, *records: dict[str, Any], owner: str = "acme", share_upstream: bool = False) -> dict[str, Any]:
        return self.post("/v1/usage", list(records), owner=owner, share_upstream=share_upstream)

    def deliver(self, event: str, payload: dict[str, Any], *, delivery: str | None = None) -> int:
        body = json.dumps(payload).encode()
        response = self.client.post(
            "/github/webhook", content=body, headers=webhook_headers(event, body, delivery=delivery)
        )
        assert response.status_code in (200, 202), response.text
        return response.status_code

    def settle(self) -> int:
        worker = self.client.app.state.worker  # type: ignore[attr-defined]
        ran: int = worker.run_until_idle()
        return ran

    def summary(self, number: int, *, repo: str = "acme/widgets") -> dict[str, Any]:
        owner = repo.split("/")[0]
        response = self.client.get(
            f"/v1/repos/{repo}/pulls/{number}", headers={"Authorization": f"Bearer {self.token(owner)}"}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def rows(self, **where: Any) -> list[Any]:
        """Stored usage rows; the time as the database holds it (a test may have stored one SQLite cannot read)."""
        columns = [c for c in USAGE.c if c.name != "timestamp"]
        raw_time = sa.type_coerce(USAGE.c.timestamp, sa.String).label("timestamp")
        with self.factory() as session:
            query = sa.select(*columns, raw_time).where(*(USAGE.c[name] == value for name, value in where.items()))
            return list(session.execute(query.order_by(USAGE.c.pk)))

    def matches(self) -> dict[str, tuple[str | None, int | None, str | None]]:
        return {row.record_id: (row.pr_repo, row.pr_number, row.match_rule) for row in self.rows()}


@pytest.fixture
def desk(settings: Settings, factory: sessionmaker[Session]) -> Iterator[Desk]:
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield Desk(client=client, factory=factory)


def record(record_id: str, *, at: datetime, repo: str = "acme/widgets", **fields: Any) -> dict[str, Any]:
    """A canonical usage record (DESIGN §2) with plausible figures; `fields` override or add any field."""
    return {
        "id": record_id,
        "timestamp": at.isoformat(),
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1000,
        "cache_read_tokens": 4000,
        "output_tokens": 200,
        "cost_usd": "1.00",
        "repo": repo,
        "branch": "feat/cache",
        "actor": "alice",
        "agent": "claude-code",
        **fields,
    }
