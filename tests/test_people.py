"""One person under several names (DESIGN §2 "Models and people"): an actor that is an e-mail or a local user name
is shown as the GitHub login it belongs to, learned from GitHub (a push's commit authors, a PR's commit list) or
given by `people:` in `.github/tokentrail.yml`, so one person is one row: in the comment, the PR page and summary,
the reports and the dashboards. Unknown actors are shown as given. Learned per owner, from e-mails only.

End to end over HTTP in App mode against the fake GitHub, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.events import PushEvent, parse_event
from app.github_objects import CommitAuthor, PullCommit, parse_pull_commits
from app.main import create_app
from app.people import logins_of, record_people
from app.repo_config import parse_repo_config
from app.settings import Settings
from tests.conftest import make_token
from tests.fake_github import FakeGitHub
from tests.github_payloads import _upstream, make_pull_request_event, webhook_headers
from tests.support import sign_in

APP_ID, ACME_INSTALLATION, UMBRELLA_INSTALLATION = 4321, 77, 88
REPO, GATEWAY, OTHER = "acme/widgets", "acme/gateway", "umbrella/gadgets"
BRANCH, HEAD = "feat/cache", "a" * 40
OPENED = datetime(2026, 10, 5, 9, tzinfo=UTC)
PERIOD = {"since": "2026-10-05", "until": "2026-10-05"}
CONFIG = (
    "budget:\n  max_cost_per_pr: 100\npeople:\n  al: alice          # alice's laptop user\n  Ed@Home.example: '@ed'\n"
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # what the worker would pass as the time of handling


# --- the config -------------------------------------------------------------------------------------------------


def test_people_maps_emails_and_local_names_to_logins() -> None:
    result = parse_repo_config(CONFIG)
    assert result.errors == []
    assert result.config.people == {"al": "alice", "ed@home.example": "ed"}
    assert result.config.budget.max_cost_per_pr == Decimal(100)


def test_bad_people_entries_are_errors_that_name_the_key_and_the_rest_applies() -> None:
    text = "people:\n  al: alice\n  bob@acme.dev: not a login!\n  carol@acme.dev: [carol]\n  dan@acme.dev:\n"
    result = parse_repo_config(text)
    assert result.errors == [
        "people.bob@acme.dev (line 3): not a GitHub login: 'not a login!'",
        "people.carol@acme.dev (line 4): expected a GitHub login",
        "people.dan@acme.dev (line 5): expected a GitHub login",
    ]
    assert result.config.people == {"al": "alice"}
    assert parse_repo_config("people: [alice]\n").errors == ["people (line 1): expected a mapping of keys"]


# --- what GitHub tells ------------------------------------------------------------------------------------------


def test_a_push_names_its_commit_authors() -> None:
    event = parse_event("push", _upstream("push.forced.json"), now=NOW)
    assert isinstance(event, PushEvent)
    author = CommitAuthor(email="21031067+codertocat@users.noreply.github.com", name="Codertocat", login="Codertocat")
    assert event.authors == (author, author)


def test_a_pull_requests_commit_list_names_its_authors() -> None:
    items: list[Any] = [
        {
            "sha": "A" * 40,
            "commit": {"author": {"name": "Carol", "email": "Carol@Acme.dev"}},
            "author": {"login": "carol"},
        },
        {"sha": "b" * 40, "commit": {"author": {"name": "Ghost", "email": "ghost@x.example"}}, "author": None},
        {"sha": "c" * 40, "commit": None},
        {"sha": None},
        "not a commit",
    ]
    assert parse_pull_commits(items) == [
        PullCommit("a" * 40, CommitAuthor(email="carol@acme.dev", name="Carol", login="carol")),
        PullCommit("b" * 40, CommitAuthor(email="ghost@x.example", name="Ghost", login=None)),
        PullCommit("c" * 40, CommitAuthor(email=None, name=None, login=None)),
    ]
    assert parse_pull_commits({"message": "Not Found"}) == []


# --- the scene --------------------------------------------------------------------------------------------------


def push_event(repo: str, *, installation_id: int, commits: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    """octokit's push example, to `feat/cache` of `repo`, with commits by (git name, git e-mail, login GitHub
    linked to that e-mail or None)."""
    payload = copy.deepcopy(_upstream("push.with-new-branch.payload.json"))
    template = payload["head_commit"]
    shas = [f"{i + 1:x}" * 40 for i in range(len(commits))]
    payload["commits"] = [
        {**template, "id": sha, "author": {"name": name, "email": email} | ({"username": login} if login else {})}
        for sha, (name, email, login) in zip(shas, commits, strict=True)
    ]
    payload["head_commit"] = payload["commits"][-1]
    owner, name = repo.split("/")
    payload["repository"] = {**payload["repository"], "full_name": repo, "name": name, "default_branch": "main"}
    payload["repository"]["owner"] = {**payload["repository"]["owner"], "login": owner}
    payload.update(ref=f"refs/heads/{BRANCH}", before="0" * 40, after=shas[-1], created=False)
    payload["installation"] = {"id": installation_id, "node_id": "x"}
    return payload


def usage(record_id: str, actor: str | None, cost: str, *, repo: str = REPO, branch: str = BRANCH,
          agent: str = "claude-code") -> dict[str, Any]:  # fmt: skip
    record = {"id": record_id, "timestamp": "2026-10-05T10:00:00Z", "provider": "anthropic",
              "model": "claude-sonnet-4-5", "input_tokens": 100, "cost_usd": cost, "repo": repo, "branch": branch,
              "agent": agent}  # fmt: skip
    return record | ({"actor": actor} if actor else {})


@pytest.fixture
def fake(app_keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=APP_ID, public_key=app_keys[1], strict_tokens=True) as fake:
        fake.add_installation(ACME_INSTALLATION, "acme")
        fake.add_installation(UMBRELLA_INSTALLATION, "umbrella")
        for repo, installation in ((REPO, ACME_INSTALLATION), (GATEWAY, ACME_INSTALLATION)):
            fake.add_repo(repo, default_branch="main", installation_id=installation)
        fake.add_repo(OTHER, default_branch="main", installation_id=UMBRELLA_INSTALLATION)
        fake.set_file(REPO, ".github/tokentrail.yml", CONFIG)
        fake.add_pull(REPO, 12, title="Add a cache layer", user="alice", head_ref=BRANCH, head_sha=HEAD,
                      additions=120, deletions=30, changed_files=4, created_at=OPENED)  # fmt: skip
        # The PR's commit list: one by carol, GitHub linking her e-mail to her account; one whose author *name* is
        # erin's laptop user but whose e-mail is mallory's (a fork contributor can write any name).
        fake.set_pull_commits(REPO, 12, ["c" * 40, "d" * 40, HEAD], authors={
            "c" * 40: ("Carol", "Carol@Acme.dev", "carol"),
            "d" * 40: ("erin", "mallory@evil.example", "mallory"),
            HEAD: ("Alice", "alice@users.noreply.github.com", "alice"),
        })  # fmt: skip
        yield fake


@pytest.fixture
def app(database_url: str, fake: FakeGitHub, app_keys: tuple[str, str]) -> FastAPI:
    settings = Settings(
        database_url=database_url,
        github_app_id=APP_ID,
        github_private_key=SecretStr(app_keys[0]),
        github_api_url=AnyHttpUrl(fake.url),
        github_webhook_secret=SecretStr("test-secret"),
        comment_debounce_seconds=0,
    )
    return create_app(settings, run_worker=False)


@pytest.fixture
def tokens(factory: sessionmaker[Session]) -> dict[str, str]:
    return {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}


@pytest.fixture
def client(app: FastAPI, tokens: dict[str, str]) -> Iterator[TestClient]:
    """acme pushes commits by alice (her e-mail linked to her login) and by someone GitHub knows no account of;
    umbrella, another owner, pushes a commit whose e-mail it claims for its own member; acme's PR #12 is opened;
    then usage arrives under every name of alice, and of others."""
    acme, umbrella = tokens["acme"], tokens["umbrella"]
    with TestClient(app) as http:

        def webhook(event: str, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            response = http.post("/github/webhook", content=body, headers=webhook_headers(event, body))
            assert response.status_code == 202, response.text

        webhook("push", push_event(REPO, installation_id=ACME_INSTALLATION, commits=[
            ("Alice Liddell", "Alice@Acme.dev", "alice"),
            ("Someone", "someone@nowhere.example", None),
        ]))  # fmt: skip
        webhook("push", push_event(OTHER, installation_id=UMBRELLA_INSTALLATION, commits=[
            ("Zed", "zed@acme.dev", "umbrella-zed"),
        ]))  # fmt: skip
        webhook("pull_request", make_pull_request_event(created_at=OPENED, head_sha=HEAD, head_ref=BRANCH,
                                                        additions=120, deletions=30, changed_files=4))  # fmt: skip
        app.state.worker.run_until_idle()

        records = [
            usage("r1", "alice", "1"),
            usage("r2", "alice@acme.dev", "2"),  # learned from acme's push
            usage("r3", "carol@acme.dev", "4"),  # learned from the PR's commit list
            usage("r4", "al", "8"),  # `people:` of acme/widgets
            usage("r5", "dave@elsewhere.example", "16"),  # nobody knows: as given
            usage("r6", "erin", "32"),  # a commit's author name is no proof: stays erin
            usage("r7", "zed@acme.dev", "64"),  # only umbrella's commits name it: stays as given for acme
            usage("r8", None, "128", agent="codex"),
            # Not on a PR: counted for the caller the usage names.
            usage("u1", "ALICE@acme.dev", "256", branch="spike"),
            usage("u2", "al", "512", branch="spike"),
            usage("u3", "al", "1024", repo=GATEWAY, branch="spike"),  # acme/gateway has no `people:`
            usage("u4", "someone@nowhere.example", "2048", branch="spike"),
        ]
        for token, batch in ((acme, records), (umbrella, [usage("x1", "alice@acme.dev", "4096", repo=OTHER)])):
            headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
            response = http.post("/v1/usage", content=json.dumps(batch), headers=headers)
            assert response.json()["accepted"] == len(batch), response.text
        app.state.worker.run_until_idle()
        http.headers["Authorization"] = f"Bearer {acme}"
        sign_in(http, acme)
        yield http


def test_the_pull_request_shows_each_person_once_by_login(client: TestClient) -> None:
    summary = client.get(f"/v1/repos/{REPO}/pulls/12").json()
    assert [(a["actor"], a["agent"], a["records"], a["cost_usd"]) for a in summary["by_actor"]] == [
        (None, "codex", 1, "128"),
        ("zed@acme.dev", "claude-code", 1, "64"),
        ("erin", "claude-code", 1, "32"),
        ("dave@elsewhere.example", "claude-code", 1, "16"),
        ("alice", "claude-code", 3, "11"),
        ("carol", "claude-code", 1, "4"),
    ]
    comment = client.get(f"/v1/repos/{REPO}/pulls/12/comment.md").text
    assert "<summary>By author and agent (6)</summary>" in comment
    assert "| alice | claude-code | 3 | $11.00 |" in comment
    assert "acme.dev" not in comment.replace("zed@\u200dacme.dev", "")
    page = client.get(f"/dashboard/{REPO}/pulls/12").text
    assert page.count('<th scope="row">alice</th>') == 1
    assert "alice@acme.dev" not in page and "carol@acme.dev" not in page and "mallory" not in page


def test_the_reports_and_dashboards_merge_a_persons_names(client: TestClient) -> None:
    widgets = client.get(f"/v1/repos/{REPO}/report", params=PERIOD).json()
    authors = {a["author"]: (a["cost_usd"], a["on_pulls_cost_usd"]) for a in widgets["by_author"]}
    # Matched spend counts for the PR's author (alice); unmatched spend for the caller, by login where known.
    assert authors == {"alice": ("1023", "255"), "someone@nowhere.example": ("2048", "0")}

    org = client.get("/v1/orgs/acme/report", params=PERIOD).json()
    authors = {a["author"]: a["cost_usd"] for a in org["by_author"]}
    assert authors == {"alice": "1023", "someone@nowhere.example": "2048", "al": "1024"}  # gateway: no `people:`

    page = client.get("/dashboard/acme", params=PERIOD).text
    people = page[page.index('<table class="people">') :]
    people = people[: people.index("</table>")]
    assert people.count('<th scope="row">alice</th>') == 1 and "alice@" not in people.lower()


def test_what_one_owner_learned_never_names_another_owners_actors(client: TestClient, tokens: dict[str, str]) -> None:
    # acme's record by zed@acme.dev stays as given (only umbrella's push linked that e-mail, to umbrella-zed)...
    acme = client.get(f"/v1/repos/{REPO}/pulls/12").json()
    assert "umbrella-zed" not in json.dumps(acme) and "zed@acme.dev" in json.dumps(acme)
    # ... and umbrella's record by alice@acme.dev is not shown as acme's alice.
    as_umbrella = {"Authorization": f"Bearer {tokens['umbrella']}"}
    umbrella = client.get("/v1/orgs/umbrella/report", params=PERIOD, headers=as_umbrella).json()
    assert [a["author"] for a in umbrella["by_author"]] == ["alice@acme.dev"]


def test_a_later_answer_from_github_replaces_an_earlier_one(factory: sessionmaker[Session]) -> None:
    def learn(owner: str, *authors: CommitAuthor) -> None:
        with factory() as session, session.begin():
            record_people(session, owner=owner, authors=authors)

    def logins(owner: str, *actors: str) -> dict[str, str]:
        with factory() as session:
            return logins_of(session, owner=owner, configured={"al": "alice"}, actors=actors)

    learn("acme", CommitAuthor("kim@acme.dev", "Kim", "kim-old"), CommitAuthor("kim@acme.dev", "Kim", "kim-old"))
    learn("umbrella", CommitAuthor("kim@acme.dev", "Kim", "someone-else"))
    assert logins("acme", "Kim@Acme.dev", "al", "nobody@acme.dev", "kim") == {"Kim@Acme.dev": "kim-old", "al": "alice"}
    learn("acme", CommitAuthor("kim@acme.dev", "Kim", "kim"), CommitAuthor("lee@acme.dev", "Lee", None))
    assert logins("acme", "kim@acme.dev", "lee@acme.dev") == {"kim@acme.dev": "kim"}
    assert logins("umbrella", "kim@acme.dev") == {"kim@acme.dev": "someone-else"}
