"""Creating the GitHub App through /github/setup, as a user would, on a real server against the fake GitHub (SQLite
and PostgreSQL): open the page, submit its form to GitHub, follow GitHub's redirect back, install the App. The
server switches to App mode without a restart: webhooks signed with the secret GitHub generated are accepted and
the PR comment is posted through GitHub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import ROOT, LiveServer, make_token, start_server
from tests.fake_github import FakeGitHub
from tests.github_payloads import make_installation_event, make_pull_request_event, webhook_headers

PUBLIC_URL = "https://tokentrail.example.com"
REPO = "acme/widgets"
HEAD = "4e5f6a7" + "0" * 33
INSTALLATION = 77
HTML = {"Accept": "text/html"}


class Forms(HTMLParser):
    """The forms of a page: method, action and the values of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"method": values.get("method", "get"), "action": values.get("action"), "fields": {}})
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")
        elif tag == "a" and "href" in values:
            self.links.append(values["href"])


def parse(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(web_user="alice") as fake:
        yield fake


@pytest.fixture
def server(database_url: str, tmp_path: Path, github: FakeGitHub) -> Iterator[LiveServer]:
    env = {
        "TOKENTRAIL_GITHUB_API_URL": github.url,
        "TOKENTRAIL_PUBLIC_URL": PUBLIC_URL,
        "TOKENTRAIL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TOKENTRAIL_GITHUB_WEBHOOK_SECRET": "",  # none configured: the App's own secret is the only one
    }
    live = start_server(database_url=database_url, log=tmp_path / "server.log", env=env)
    yield live
    live.stop()


def create_app_through_setup(server: LiveServer, github: FakeGitHub) -> httpx.Response:
    """What a user does: open the page, press the button (GitHub creates the App), come back to the redirect."""
    page = httpx.get(f"{server.url}/github/setup", headers=HTML)
    assert page.status_code == 200, page.text
    form = next(f for f in parse(page.text).forms if f["method"] == "post")
    policy = page.headers["content-security-policy"]
    assert f"form-action 'self' {github.url}" in policy  # the browser may post this form to GitHub, nowhere else
    created = httpx.post(str(form["action"]), data={"manifest": form["fields"]["manifest"]})
    assert created.status_code == 302
    back = urlsplit(created.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC_URL}/github/setup"
    return httpx.get(f"{server.url}/github/setup?{back.query}", headers=HTML)


def test_the_page_posts_the_manifest_of_app_yml_with_this_servers_addresses(
    server: LiveServer, github: FakeGitHub
) -> None:
    page = httpx.get(f"{server.url}/github/setup", headers=HTML)
    assert page.status_code == 200
    forms = parse(page.text).forms
    personal = next(f for f in forms if f["method"] == "post")
    action = urlsplit(personal["action"])
    assert f"{action.scheme}://{action.netloc}{action.path}" == f"{github.url}/settings/apps/new"
    assert parse_qs(action.query)["state"][0]
    manifest = json.loads(personal["fields"]["manifest"])
    template = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["hook_attributes"] == {"url": f"{PUBLIC_URL}/github/webhook", "active": True}
    assert manifest["redirect_url"] == f"{PUBLIC_URL}/github/setup"
    assert manifest["url"] == PUBLIC_URL
    assert manifest["default_permissions"] == template["default_permissions"]
    assert manifest["default_events"] == template["default_events"]
    assert "secret" not in json.dumps(manifest)  # GitHub generates the webhook secret

    # The organisation field leads to a form that creates the App on that organisation.
    for_org = httpx.get(f"{server.url}/github/setup", params={"organization": "Acme-Corp"}, headers=HTML)
    assert for_org.status_code == 200
    org_form = next(f for f in parse(for_org.text).forms if f["method"] == "post")
    assert urlsplit(org_form["action"]).path == "/organizations/Acme-Corp/settings/apps/new"
    refused = httpx.get(f"{server.url}/github/setup", params={"organization": "not an org!"})
    assert refused.status_code == 422
    assert "organisation login" in refused.json()["detail"]


def test_created_and_installed_through_setup_the_server_runs_as_the_app(
    server: LiveServer, github: FakeGitHub, factory: sessionmaker[Session]
) -> None:
    # Before: no App, so webhooks are refused for want of a secret.
    refused = httpx.post(f"{server.url}/github/webhook", content=b"{}", headers=webhook_headers("ping", b"{}"))
    assert refused.status_code == 503
    create_install_and_expect_a_comment(server, github, factory)

    # The setup is closed: the page and a replay of the exchange both answer 404.
    assert httpx.get(f"{server.url}/github/setup").status_code == 404
    assert httpx.get(f"{server.url}/github/setup", params={"code": "x", "state": "y"}).status_code == 404


def test_a_separate_worker_process_picks_up_the_app_created_through_the_api(
    database_url: str, tmp_path: Path, github: FakeGitHub, factory: sessionmaker[Session]
) -> None:
    """The compose layout: an API replica without a worker, and a `tokentrail worker` beside it. The App is created
    through the API; the worker finds it in the database and posts as that App, neither restarted."""
    env = {
        "TOKENTRAIL_GITHUB_API_URL": github.url,
        "TOKENTRAIL_PUBLIC_URL": PUBLIC_URL,
        "TOKENTRAIL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TOKENTRAIL_GITHUB_WEBHOOK_SECRET": "",
        "TOKENTRAIL_COMMENT_DEBOUNCE_SECONDS": "0",
        "TOKENTRAIL_DATABASE_URL": database_url,
        "TOKENTRAIL_HEARTBEAT_PATH": str(tmp_path / "worker.heartbeat"),
    }
    api = start_server(
        database_url=database_url, log=tmp_path / "api.log", env=env | {"TOKENTRAIL_RUN_WORKER": "false"}
    )
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log
        )
    try:
        create_install_and_expect_a_comment(api, github, factory)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        api.stop()
    assert "now in GitHub App mode" in (tmp_path / "worker.log").read_text()


def create_install_and_expect_a_comment(server: LiveServer, github: FakeGitHub, factory: sessionmaker[Session]) -> None:
    done = create_app_through_setup(server, github)
    assert done.status_code == 200, done.text
    links = parse(done.text).links
    assert "https://github.com/apps/tokentrail/installations/new" in links
    assert github.webhook_secret is not None and len(github.manifests) == 1

    # The user installs the App; GitHub tells the server, signing with the secret it generated.
    github.add_installation(INSTALLATION, "acme")
    github.add_repo(REPO, installation_id=INSTALLATION)
    opened = datetime.now(UTC) - timedelta(hours=1)
    github.add_pull(REPO, 12, head_ref="feat/setup", head_sha=HEAD, additions=40, deletions=2, created_at=opened)
    secret = github.webhook_secret
    with httpx.Client(base_url=server.url, timeout=30) as client:
        forged = json.dumps(make_installation_event()).encode()
        assert (
            client.post("/github/webhook", content=forged, headers=webhook_headers("installation", forged)).status_code
            == 401
        )
        for event, payload in [
            ("installation", make_installation_event(installation_id=INSTALLATION)),
            ("pull_request", make_pull_request_event(head_ref="feat/setup", head_sha=HEAD, created_at=opened)),
        ]:
            body = json.dumps(payload).encode()
            answer = client.post("/github/webhook", content=body, headers=webhook_headers(event, body, secret=secret))
            assert answer.status_code == 202, answer.text
        record = {
            "id": "setup-1",
            "timestamp": (opened + timedelta(minutes=5)).isoformat(),
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": "0.42",
            "repo": REPO,
            "branch": "feat/setup",
        }
        token = make_token(factory, "acme")
        sent = client.post("/v1/usage", json=[record], headers={"Authorization": f"Bearer {token}"})
        assert sent.json()["accepted"] == 1

    comments = wait_for(lambda: github.comments(REPO, 12), what="the PR comment posted through GitHub")
    assert len(comments) == 1 and "$0.42" in comments[0]["body"]
    assert comments[0]["performed_via_github_app"]["id"] == github.app_id  # posted as the App just created


def test_the_exchange_accepts_only_a_state_it_issued_and_only_once(server: LiveServer, github: FakeGitHub) -> None:
    page = httpx.get(f"{server.url}/github/setup", headers=HTML)
    form = next(f for f in parse(page.text).forms if f["method"] == "post")
    back = urlsplit(httpx.post(str(form["action"]), data={"manifest": form["fields"]["manifest"]}).headers["location"])
    code = parse_qs(back.query)["code"][0]

    forged = httpx.get(f"{server.url}/github/setup", params={"code": code, "state": "made-up"})
    assert forged.status_code == 400
    assert "state" in forged.json()["detail"]
    assert github.calls_to("POST", "/app-manifests") == []  # the code never reached GitHub

    assert httpx.get(f"{server.url}/github/setup?{back.query}").status_code == 200
    assert httpx.get(f"{server.url}/github/setup?{back.query}").status_code == 404
