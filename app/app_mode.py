"""Dry-run or GitHub App mode, and the switch between them without a restart.

A server starts in dry-run when the environment names no App. /github/setup then creates one and calls
`AppMode.switch`; other processes on the same database (API replicas, `tokentrail worker`s) notice the stored App
through `watch` within a few seconds. Either way the switch is one-way and replaces whole objects: the settings
(read per request by the webhook route for its secret) and the worker's publisher (read once per job). Each is a
single reference assignment, so a request or a job sees the old mode or the new one, never a mix; the lock only
keeps two switches from interleaving.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.app_credentials import AppCredentials, CredentialsUnreadable, load_credentials, make_cipher
from app.publish import Publisher
from app.settings import Settings
from app.worker import Worker

log = logging.getLogger("tokentrail.app_mode")
WATCH_SECONDS = 5.0


def settings_with_app(settings: Settings, credentials: AppCredentials) -> Settings:
    """`settings` completed with a stored App; whatever the environment sets wins (an App id and key as a pair,
    the webhook secret alone, TOKENTRAIL_DRY_RUN)."""
    update: dict[str, Any] = {}
    if not settings.has_app_credentials:
        update |= {"github_app_id": credentials.app_id, "github_private_key": SecretStr(credentials.private_key)}
    if settings.github_webhook_secret is None and credentials.webhook_secret:
        update["github_webhook_secret"] = SecretStr(credentials.webhook_secret)
    return settings.model_copy(update=update)


def publisher_for(settings: Settings) -> Publisher:
    github = None
    if not settings.is_dry_run:
        from app.github import GitHubApp

        github = GitHubApp(settings)
    return Publisher(settings=settings, github=github)


class AppMode:
    """The mode of one process: its worker's, and its FastAPI app's settings once `attach`ed (API processes)."""

    def __init__(self, *, worker: Worker, factory: sessionmaker[Session]) -> None:
        self._worker = worker
        self._factory = factory
        self._state: Any = None
        self._lock = threading.Lock()
        self._last_problem: str | None = None

    def attach(self, state: Any) -> None:
        """Keep `state.settings` (what the routes read) in the current mode."""
        self._state = state

    @property
    def settings(self) -> Settings:
        return self._worker.settings

    @property
    def has_app(self) -> bool:
        return self.settings.has_app_credentials

    def switch(self, credentials: AppCredentials) -> Settings:
        with self._lock:
            settings = settings_with_app(self._worker.settings, credentials)
            publisher = publisher_for(settings)
            self._worker.publisher = publisher
            self._worker.settings = settings
            if self._state is not None:
                self._state.settings = settings
        mode = "dry-run (TOKENTRAIL_DRY_RUN)" if settings.is_dry_run else "GitHub App mode"
        log.warning("now in %s with GitHub App %s (id %s)", mode, credentials.slug, credentials.app_id)
        return settings

    def load_stored(self) -> bool:
        """Switch to the App stored in the database when the environment configures none; True once in App mode.
        Stored credentials the key cannot open are logged and leave the mode as it is."""
        if self.has_app:
            return True
        key = self.settings.encryption_key
        cipher = None if key is None else make_cipher(key.get_secret_value())
        try:
            with self._factory() as session:
                credentials = load_credentials(session, cipher=cipher)
        except CredentialsUnreadable as error:
            if str(error) != self._last_problem:  # said once, not at every look
                log.error("staying in dry-run: %s", error)
                self._last_problem = str(error)
            return False
        if credentials is None:
            return False
        self.switch(credentials)
        return True

    def start(self, stop: threading.Event) -> None:
        """At start: use the stored App, or watch for one until `stop`."""
        try:
            if self.load_stored():
                return
        except Exception:  # the database is away: the watch looks again
            log.exception("could not read the stored GitHub App")
        threading.Thread(target=self.watch, args=(stop,), name="tokentrail-app-mode", daemon=True).start()

    def watch(self, stop: threading.Event) -> None:
        """Until `stop` or App mode: look for an App another process created (thread target)."""
        while not stop.wait(WATCH_SECONDS):
            try:
                if self.load_stored():
                    return
            except Exception:  # the database is away: look again later
                log.exception("could not read the stored GitHub App")
