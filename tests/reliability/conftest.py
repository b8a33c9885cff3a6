"""Fixtures of the reliability suite (tests/reliability/, see its README).

The suite runs in a CI size by default. `TOKENTRAIL_RELIABILITY_SCALE=large` (or `--reliability-scale=large` when
pytest is pointed at this folder) makes every scenario bigger: more pull requests, batches and generated requests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_token
from tests.reliability.support import APP_ID, INSTALLATION, REPO, Scale, SlowFakeGitHub


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-scale",
        choices=["ci", "large"],
        default=None,
        help="size of the reliability scenarios (default: $TOKENTRAIL_RELIABILITY_SCALE, else ci)",
    )


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    chosen = pytestconfig.getoption("--reliability-scale", default=None)
    name = chosen or os.environ.get("TOKENTRAIL_RELIABILITY_SCALE", "ci").strip().lower() or "ci"
    if name not in ("ci", "large"):
        raise pytest.UsageError(f"TOKENTRAIL_RELIABILITY_SCALE must be ci or large, not {name!r}")
    return Scale.large() if name == "large" else Scale.ci()


@pytest.fixture
def github(app_keys: tuple[str, str]) -> Iterator[SlowFakeGitHub]:
    """A fake GitHub with the installation and the repository; each test adds its pull requests."""
    with SlowFakeGitHub(app_id=APP_ID, public_key=app_keys[1]) as fake:
        fake.add_installation(INSTALLATION, "acme")
        fake.add_repo(REPO, default_branch="main", installation_id=INSTALLATION)
        yield fake


@pytest.fixture
def api_token(factory: sessionmaker[Session]) -> str:
    return make_token(factory, "acme")
