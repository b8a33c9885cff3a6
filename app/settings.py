"""Settings from TOKENTRAIL_* environment variables (DESIGN §9). Nothing is read at import time."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GITHUB_ACTIONS_JWKS_URL = "https://token.actions.githubusercontent.com/.well-known/jwks"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENTRAIL_", extra="ignore")

    database_url: str = "sqlite:///./tokentrail.db"
    github_app_id: int | None = None
    github_private_key: SecretStr | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: AnyHttpUrl = AnyHttpUrl("https://api.github.com")
    # Where people use GitHub in a browser (the App manifest form posts there); None derives it from the API URL.
    github_web_url: AnyHttpUrl | None = None
    # Fernet key(s), comma-separated (the first encrypts, any decrypts): the App credentials /github/setup stores.
    encryption_key: SecretStr | None = None
    # None means "decide from the credentials": dry-run unless a GitHub App is configured.
    dry_run: bool | None = None
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    comment_debounce_seconds: float = Field(default=10, ge=0)
    late_usage_grace_seconds: int = Field(default=900, ge=0)
    oidc_jwks_url: AnyHttpUrl = AnyHttpUrl(GITHUB_ACTIONS_JWKS_URL)
    oidc_audience: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Limits that protect the ingest path (DESIGN §9: bodies over 10 MB or batches over 10,000 records get 413).
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_batch_records: int = Field(default=10_000, gt=0)
    # Seconds a client may take, in all, to send a request body before it is answered 408 (DESIGN §9).
    body_timeout_seconds: float = Field(default=30, gt=0)
    run_worker: bool = True
    # The owner whose dashboard demo mode shows (`tokentrail demo` seeds it).
    demo_owner: str = "acme"
    # Dashboard open without login, showing the demo organisation (set by `tokentrail demo`; never in production).
    demo_mode: bool = False
    # Per-person rows on dashboards, comments, the API and CSV, unless a repository's `dashboard.people` says
    # otherwise: "aggregate" shows team medians instead (the README says why: tokenmaxxing).
    dashboard_people: Literal["show", "aggregate"] = "show"
    # The file a worker loop touches while it runs, for `tokentrail healthcheck`; None: one per database in /tmp.
    heartbeat_path: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// SQLAlchemy URL")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; SQLAlchemy would otherwise look for psycopg2.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("github_webhook_secret", "github_private_key", "encryption_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty webhook secret would let anyone sign a webhook: a variable set to "" counts as unset.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from app.app_credentials import make_cipher

            make_cipher(value.get_secret_value())  # raises ValueError naming the problem
        return value

    @field_validator("demo_owner")
    @classmethod
    def _login(cls, value: str) -> str:
        return value.strip().lower()

    @model_validator(mode="after")
    def _private_key_readable(self) -> Settings:
        if self.github_private_key is None and self.github_private_key_path is not None:
            try:
                pem = self.github_private_key_path.read_text()
            except OSError as error:
                raise ValueError(f"TOKENTRAIL_GITHUB_PRIVATE_KEY_PATH cannot be read: {error}") from None
            self.github_private_key = SecretStr(pem)
        if self.github_private_key is not None and "PRIVATE KEY" not in self.github_private_key.get_secret_value():
            raise ValueError("TOKENTRAIL_GITHUB_PRIVATE_KEY is not a PEM private key")
        return self

    @property
    def has_app_credentials(self) -> bool:
        return self.github_app_id is not None and self.github_private_key is not None

    @property
    def is_dry_run(self) -> bool:
        return not self.has_app_credentials if self.dry_run is None else self.dry_run

    @property
    def audience(self) -> str:
        return self.oidc_audience or str(self.public_url).rstrip("/")

    @property
    def web_url(self) -> str:
        """GitHub's web address for this API: github.com for api.github.com, the host for GitHub Enterprise Server
        (https://HOST/api/v3) and GHE.com (api.SUBDOMAIN.ghe.com); otherwise the API URL itself (a fake)."""
        if self.github_web_url is not None:
            return str(self.github_web_url).rstrip("/")
        from app.app_manifest import web_url_of_api

        return web_url_of_api(str(self.github_api_url))

    @property
    def worker_heartbeat_path(self) -> Path:
        if self.heartbeat_path is not None:
            return self.heartbeat_path
        from app.heartbeat import default_heartbeat_path

        return default_heartbeat_path(self.database_url)


class SettingsError(RuntimeError):
    """Bad environment: the message names each variable and what is wrong with it."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = "TOKENTRAIL_" + "_".join(str(part) for part in problem["loc"]).upper()
            lines.append(f"  {name or 'TOKENTRAIL_*'}: {problem['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
