from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "DRY_RUN", "PUBLIC_URL"):
        monkeypatch.delenv(f"TOKENTRAIL_{name}", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./tokentrail.db"
    assert str(settings.github_api_url) == "https://api.github.com/"
    assert settings.comment_debounce_seconds == 10
    assert settings.late_usage_grace_seconds == 900
    assert settings.is_dry_run  # no App credentials
    assert settings.audience == "http://127.0.0.1:8000"


def test_bad_values_fail_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTRAIL_LATE_USAGE_GRACE_SECONDS", "soon")
    monkeypatch.setenv("TOKENTRAIL_DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "TOKENTRAIL_LATE_USAGE_GRACE_SECONDS" in str(error.value)
    assert "TOKENTRAIL_DATABASE_URL" in str(error.value)


def test_private_key_from_a_path(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n")
    settings = Settings(github_app_id=1, github_private_key_path=key)
    assert settings.github_private_key is not None
    assert "abc" in settings.github_private_key.get_secret_value()
    assert settings.has_app_credentials and not settings.is_dry_run
    assert "abc" not in repr(settings)  # a secret type never prints its value


def test_unreadable_key_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PRIVATE_KEY_PATH"):
        Settings(github_private_key_path=tmp_path / "missing.pem")


def test_plain_postgres_url_uses_psycopg() -> None:
    assert Settings(database_url="postgresql://u@h/db").database_url == "postgresql+psycopg://u@h/db"
