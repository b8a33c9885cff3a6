"""The GitHub App's credentials as /github/setup received them from GitHub, kept in the database with every secret
encrypted by TOKENTRAIL_ENCRYPTION_KEY (Fernet: AES-128-CBC with an HMAC-SHA256, from `cryptography`).

Why the database and not a file: the API that runs the setup and the workers that post comments are often
different processes or containers; all of them reach the database, and none has to share a volume or be
restarted. Why encrypted: a database dump or backup then holds nothing that can act as the App.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.tables import APP_CREDENTIALS

ROW_ID = 1  # one App per server: a second insert of this id fails, whoever races
KEY_HINT = (
    "a Fernet key is 32 random bytes in URL-safe base64, e.g. "
    "python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)


class CredentialsUnreadable(Exception):
    """Stored credentials that TOKENTRAIL_ENCRYPTION_KEY does not decrypt (another key, or none set)."""


@dataclass(frozen=True)
class AppCredentials:
    app_id: int
    slug: str
    name: str
    owner: str
    html_url: str
    client_id: str
    private_key: str
    webhook_secret: str | None
    client_secret: str


def make_cipher(keys: str) -> MultiFernet:
    """A cipher from comma-separated Fernet keys: the first encrypts, every one decrypts (key rotation)."""
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ValueError(f"no key given: {KEY_HINT}")
    try:
        return MultiFernet([Fernet(part.encode()) for part in parts])
    except ValueError:
        raise ValueError(f"not a Fernet key: {KEY_HINT}") from None


def app_exists(session: Session) -> bool:
    return session.execute(sa.select(APP_CREDENTIALS.c.id)).first() is not None


def store_credentials(session: Session, credentials: AppCredentials, *, cipher: MultiFernet) -> bool:
    """Store the App; False when one was already stored (the first one stays)."""

    def seal(text: str) -> str:
        return cipher.encrypt(text.encode()).decode()

    values = {
        "id": ROW_ID,
        "app_id": credentials.app_id,
        "slug": credentials.slug[:100],
        "name": credentials.name[:100],
        "owner": credentials.owner[:100],
        "html_url": credentials.html_url[:500],
        "client_id": credentials.client_id[:100],
        "private_key_encrypted": seal(credentials.private_key),
        "webhook_secret_encrypted": None if credentials.webhook_secret is None else seal(credentials.webhook_secret),
        "client_secret_encrypted": seal(credentials.client_secret),
        "created_at": utcnow(),
    }
    try:
        with session.begin_nested():
            session.execute(sa.insert(APP_CREDENTIALS).values(**values))
    except IntegrityError:
        return False
    return True


def load_credentials(session: Session, *, cipher: MultiFernet | None) -> AppCredentials | None:
    """The stored App, decrypted; None when there is none. CredentialsUnreadable when the key cannot open it."""
    row = session.execute(sa.select(APP_CREDENTIALS).where(APP_CREDENTIALS.c.id == ROW_ID)).first()
    if row is None:
        return None
    if cipher is None:
        raise CredentialsUnreadable(
            f"GitHub App {row.slug} (id {row.app_id}) is stored encrypted, and TOKENTRAIL_ENCRYPTION_KEY is not set"
        )

    def unseal(token: str) -> str:
        try:
            return cipher.decrypt(token.encode()).decode()
        except InvalidToken:
            raise CredentialsUnreadable(
                f"TOKENTRAIL_ENCRYPTION_KEY does not decrypt the stored GitHub App {row.slug} (id {row.app_id}): "
                "set the key it was stored with"
            ) from None

    return AppCredentials(
        app_id=int(row.app_id),
        slug=row.slug,
        name=row.name,
        owner=row.owner,
        html_url=row.html_url,
        client_id=row.client_id,
        private_key=unseal(row.private_key_encrypted),
        webhook_secret=None if row.webhook_secret_encrypted is None else unseal(row.webhook_secret_encrypted),
        client_secret=unseal(row.client_secret_encrypted),
    )
