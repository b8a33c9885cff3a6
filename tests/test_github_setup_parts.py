"""The parts of /github/setup: the manifest and GitHub's web addresses (pure), the single-use states and the
encrypted credentials (SQLite and PostgreSQL), the settings that configure them, and the mode switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.app_credentials import (
    AppCredentials,
    CredentialsUnreadable,
    app_exists,
    load_credentials,
    make_cipher,
    store_credentials,
)
from app.app_manifest import build_manifest, install_url, is_loopback, new_app_url, web_url_of_api
from app.app_mode import settings_with_app
from app.db import session_scope
from app.github_login import is_github_login
from app.main import create_app
from app.settings import Settings, SettingsError, load_settings
from app.setup_states import MAX_OPEN, consume_state, issue_state

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIfake\n-----END RSA PRIVATE KEY-----\n"
CREDENTIALS = AppCredentials(
    app_id=901,
    slug="tokentrail-acme",
    name="Tokentrail Acme",
    owner="acme",
    html_url="https://github.com/apps/tokentrail-acme",
    client_id="Iv1.abc",
    private_key=PEM,
    webhook_secret="generated-by-github",
    client_secret="client-secret",
)


# --- pure: manifest and addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
        ("https://api.octocorp.ghe.com", "https://octocorp.ghe.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ],
)
def test_the_web_address_follows_the_api_address(api: str, web: str) -> None:
    assert web_url_of_api(api) == web
    assert Settings(github_api_url=api).web_url == web


def test_a_configured_web_address_wins() -> None:
    settings = Settings(github_api_url="https://gh.internal/api/v3", github_web_url="https://github.internal/")
    assert settings.web_url == "https://github.internal"


def test_new_app_urls_for_an_account_and_an_organisation() -> None:
    assert new_app_url("https://github.com", state="s t") == "https://github.com/settings/apps/new?state=s+t"
    assert (
        new_app_url("https://ghe.example.com", state="abc", organization="Acme-Corp")
        == "https://ghe.example.com/organizations/Acme-Corp/settings/apps/new?state=abc"
    )
    with pytest.raises(ValueError, match="organisation login"):
        new_app_url("https://github.com", state="abc", organization="../../settings")


def test_the_manifest_takes_the_servers_addresses_and_keeps_the_rest() -> None:
    template = {"name": "Tokentrail", "url": "https://x", "hook_attributes": {"url": "https://x/h"}, "public": False}
    manifest = build_manifest(template, public_url="https://tt.example.com/")
    assert manifest == {
        "name": "Tokentrail",
        "url": "https://tt.example.com",
        "hook_attributes": {"url": "https://tt.example.com/github/webhook", "active": True},
        "redirect_url": "https://tt.example.com/github/setup",
        "public": False,
    }
    assert template["hook_attributes"] == {"url": "https://x/h"}  # the template is not changed


def test_install_url_and_loopback() -> None:
    assert install_url("https://github.com/apps/tt/") == "https://github.com/apps/tt/installations/new"
    assert is_loopback("http://127.0.0.1:8000") and is_loopback("http://localhost:8000")
    assert not is_loopback("https://tokentrail.example.com")


@pytest.mark.parametrize("login", ["acme", "Acme-Corp", "a", "x" * 39, "mona_acme", "a1-b2"])
def test_github_logins(login: str) -> None:
    assert is_github_login(login)


@pytest.mark.parametrize("login", ["", "not a login!", "-acme", "acme-", "ac--me", "x" * 40, "acme/widgets", "ä"])
def test_not_github_logins(login: str) -> None:
    assert not is_github_login(login)


# --- settings ---------------------------------------------------------------------------------------------------


def test_a_blank_webhook_secret_is_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTRAIL_GITHUB_WEBHOOK_SECRET", "  ")
    assert load_settings().github_webhook_secret is None


def test_a_bad_encryption_key_stops_the_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTRAIL_ENCRYPTION_KEY", "hunter2")
    with pytest.raises(SettingsError, match=r"TOKENTRAIL_ENCRYPTION_KEY.*Fernet key"):
        load_settings()


def test_the_environment_wins_over_the_stored_app() -> None:
    bare = Settings()
    completed = settings_with_app(bare, CREDENTIALS)
    assert completed.github_app_id == 901 and completed.has_app_credentials and not completed.is_dry_run
    assert completed.github_webhook_secret == SecretStr("generated-by-github")
    configured = Settings(github_app_id=5, github_private_key=PEM, github_webhook_secret="mine", dry_run=True)
    kept = settings_with_app(configured, CREDENTIALS)
    assert (kept.github_app_id, kept.github_webhook_secret, kept.is_dry_run) == (5, SecretStr("mine"), True)


# --- states and credentials (both databases) --------------------------------------------------------------------


def test_a_state_works_once_and_only_within_the_hour(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        state = issue_state(session, now=NOW)
        late = issue_state(session, now=NOW)
    with session_scope(factory) as session:
        assert not consume_state(session, "made-up", now=NOW)
        assert not consume_state(session, late, now=NOW + timedelta(hours=1, seconds=1))
        assert consume_state(session, state, now=NOW + timedelta(minutes=59))
    with session_scope(factory) as session:
        assert not consume_state(session, state, now=NOW + timedelta(minutes=59))


def test_a_stranger_reloading_the_page_stores_a_bounded_number_of_states(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        first = issue_state(session, now=NOW)
        for i in range(MAX_OPEN + 20):
            issue_state(session, now=NOW + timedelta(seconds=i + 1))
    with session_scope(factory) as session:
        count = session.execute(sa.text("SELECT COUNT(*) FROM github_setup_states")).scalar_one()
        assert count == MAX_OPEN
        assert not consume_state(session, first, now=NOW)  # the oldest made room


def test_credentials_are_stored_encrypted_and_only_once(factory: sessionmaker[Session]) -> None:
    key = Fernet.generate_key().decode()
    cipher = make_cipher(key)
    with session_scope(factory) as session:
        assert not app_exists(session)
        assert store_credentials(session, CREDENTIALS, cipher=cipher)
    with session_scope(factory) as session:
        assert not store_credentials(session, CREDENTIALS, cipher=cipher)  # the first App stays
        assert app_exists(session)
    with factory() as session:
        raw = " ".join(str(v) for v in session.execute(sa.text("SELECT * FROM github_app_credentials")).one())
        assert "PRIVATE KEY" not in raw and "generated-by-github" not in raw and "client-secret" not in raw
        assert load_credentials(session, cipher=cipher) == CREDENTIALS
        rotated = make_cipher(f"{Fernet.generate_key().decode()},{key}")  # a new key first, the old one still read
        assert load_credentials(session, cipher=rotated) == CREDENTIALS
        with pytest.raises(CredentialsUnreadable, match="does not decrypt"):
            load_credentials(session, cipher=make_cipher(Fernet.generate_key().decode()))
        with pytest.raises(CredentialsUnreadable, match="not set"):
            load_credentials(session, cipher=None)


def test_a_restarted_server_runs_as_the_stored_app(factory: sessionmaker[Session], settings: Settings) -> None:
    key = Fernet.generate_key().decode()
    with session_scope(factory) as session:
        store_credentials(session, CREDENTIALS, cipher=make_cipher(key))
    restarted = settings.model_copy(update={"encryption_key": SecretStr(key), "github_webhook_secret": None})
    with TestClient(create_app(restarted, run_worker=False)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        assert state.settings.github_app_id == 901 and not state.settings.is_dry_run
        assert state.worker.publisher.github is not None
        assert client.get("/github/setup").status_code == 404
    # Without the key the stored App cannot be read: the server starts in dry-run and says why in its log.
    with TestClient(create_app(restarted.model_copy(update={"encryption_key": None}), run_worker=False)) as client:
        assert client.app.state.settings.is_dry_run  # type: ignore[attr-defined]
        assert client.get("/github/setup").status_code == 404  # an App exists all the same


def test_without_an_encryption_key_the_page_says_how_to_set_one(client: TestClient) -> None:
    page = client.get("/github/setup", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "TOKENTRAIL_ENCRYPTION_KEY" in page.text and "<form" not in page.text
    refused = client.get("/github/setup", params={"code": "abc", "state": "def"})
    assert refused.status_code == 503
    assert "TOKENTRAIL_ENCRYPTION_KEY" in refused.json()["detail"]


def test_a_server_configured_with_an_app_has_no_setup_page(settings: Settings) -> None:
    configured = settings.model_copy(update={"github_app_id": 7, "github_private_key": SecretStr(PEM)})
    with TestClient(create_app(configured, run_worker=False)) as client:
        assert client.get("/github/setup").status_code == 404
        page = client.get("/github/setup", headers={"Accept": "text/html"})
        assert page.status_code == 404 and "already has its GitHub App" in page.text
