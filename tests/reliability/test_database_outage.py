"""The database going away, against a real server: while PostgreSQL is unreachable (its connection runs through a
TCP proxy the test cuts), every route that needs it answers 503 JSON with Retry-After and `/healthz` says
unavailable; once the proxy is restored everything answers again, and every batch that was acknowledged is
stored exactly once. On SQLite, a database file that cannot be opened is a 503 too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import create_db_engine, make_sessionmaker
from app.main import create_app
from app.settings import Settings
from tests.conftest import LiveServer, _pg_admin, _pg_url, make_token, start_server
from tests.github_payloads import make_pull_request_event, webhook_headers
from tests.reliability.support import OPENED, REPO, Db, canonical, wait_for
from tests.reliability.tcp_proxy import TcpProxy


@pytest.fixture
def postgres_database(postgres_template: str, postgres_admin_url: str) -> Iterator[str]:
    """A migrated, empty PostgreSQL database of this test's own (its URL, straight to the server)."""
    name = f"tokentrail_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin(postgres_admin_url)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    try:
        yield _pg_url(postgres_admin_url, name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def proxy(postgres_admin_url: str) -> Iterator[TcpProxy]:
    url = sa.engine.make_url(postgres_admin_url)
    socket_folder = url.query.get("host")
    if isinstance(socket_folder, str) and socket_folder.startswith("/"):  # the suite's own server: a Unix socket
        tcp = TcpProxy(f"{socket_folder}/.s.PGSQL.{url.port or 5432}")
    else:
        tcp = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield tcp
    tcp.close()


def through(proxy: TcpProxy, direct_url: str) -> str:
    """The same database, reached through the proxy's TCP port."""
    url = sa.engine.make_url(direct_url)
    url = url.set(host="127.0.0.1", port=proxy.port, query={k: v for k, v in url.query.items() if k != "host"})
    return url.render_as_string(hide_password=False)


def _batch(prefix: str, count: int) -> list[dict[str, Any]]:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    return [canonical(f"{prefix}-{i}", cost="0.01", at=at, branch="feat/outage") for i in range(count)]


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) > 0
    assert "database" in response.json()["detail"]


def test_postgres_unreachable_is_503_and_nothing_acknowledged_is_lost(
    postgres_database: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    direct_url = postgres_database
    proxied_url = through(proxy, direct_url)
    assert proxied_url != direct_url
    engine = create_db_engine(direct_url)
    token = make_token(make_sessionmaker(engine), "acme")
    engine.dispose()
    server: LiveServer = start_server(database_url=proxied_url, log=tmp_path / "server.log")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.post("/v1/usage", json=_batch("before", 5), headers=auth).json()["accepted"] == 5
            assert client.post("/login", data={"token": token}, headers={"Origin": server.url}).status_code == 303
            assert client.get("/dashboard/acme").status_code == 200

            proxy.cut()
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json() == {"status": "unavailable"}
            _assert_unavailable(client.post("/v1/usage", json=_batch("during", 5), headers=auth))
            _assert_unavailable(client.get(f"/v1/repos/{REPO}/usage", headers=auth))
            _assert_unavailable(client.get(f"/v1/repos/{REPO}/pulls/1", headers=auth))
            _assert_unavailable(client.get("/dashboard/acme"))
            _assert_unavailable(client.get("/metrics"))
            opened = json.dumps(make_pull_request_event("opened", repo=REPO, number=7, created_at=OPENED)).encode()
            headers = webhook_headers("pull_request", opened, delivery="outage-1")
            _assert_unavailable(client.post("/github/webhook", content=opened, headers=headers))

            proxy.restore()
            wait_for(lambda: client.get("/healthz").status_code == 200, what="/healthz to answer again")
            # The client resends what was refused; nothing acknowledged before the outage is lost or doubled.
            assert client.post("/v1/usage", json=_batch("during", 5), headers=auth).json()["accepted"] == 5
            assert client.post("/v1/usage", json=_batch("before", 5), headers=auth).json()["duplicates"] == 5
            usage = client.get(f"/v1/repos/{REPO}/usage", headers=auth)
            assert usage.status_code == 200 and usage.json()["records"] == 10
            assert client.get("/dashboard/acme").status_code == 200
            assert client.get("/metrics").status_code == 200
            # GitHub redelivers the refused delivery: it is queued now.
            assert client.post("/github/webhook", content=opened, headers=headers).status_code == 202
    finally:
        server.stop()
    db = Db(direct_url)
    try:
        assert db.usage_count() == 10
    finally:
        db.close()
    assert "Exception in ASGI application" not in server.log.read_text()


def test_a_sqlite_file_that_cannot_be_opened_is_503(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/no-such-folder/tokentrail.db", run_worker=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json() == {"status": "unavailable"}
        auth = {"Authorization": "Bearer tt_anything"}
        _assert_unavailable(client.post("/v1/usage", json=_batch("x", 1), headers=auth))
        _assert_unavailable(client.get(f"/v1/repos/{REPO}/usage", headers=auth))
        client.cookies.set("tokentrail_session", "tt_anything")
        _assert_unavailable(client.get("/dashboard/acme"))
        _assert_unavailable(client.get("/metrics"))
