"""The fake GitHub of tests/fake_github.py, driven over HTTP by the real githubkit client the app uses.

These tests pin the githubkit calls the app's GitHub adapter is written against: app (JWT) auth, the
installation-token flow, the REST methods and what their parsed models hold, pagination and error classes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    PrimaryRateLimitExceeded,
    RequestError,
    RequestFailed,
    SecondaryRateLimitExceeded,
)
from githubkit_schemas.latest.models import ContentFile, Integration, SimpleUser

from tests import fake_github as fake_github_module
from tests.fake_github import SECONDARY_MESSAGE, FakeGitHub

fake_github = fake_github_module.fake_github  # the fixture, made available here

APP_ID = 4321
INSTALLATION = 77
REPO = "acme/widgets"
SHAS = [f"{n:x}" * 40 for n in (10, 11, 12)]  # aaaa…, bbbb…, cccc…
HEAD = SHAS[-1]


def _pem(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA key: the app's key."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def fake(keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=APP_ID, public_key=keys[1], strict_tokens=True) as fake:
        fake.add_installation(INSTALLATION, "acme")
        fake.add_repo(REPO, default_branch="trunk", installation_id=INSTALLATION)
        fake.add_pull(
            REPO,
            7,
            title="Cache the pricing table",
            user="alice",
            head_ref="feat/cache",
            head_sha=HEAD,
            additions=120,
            deletions=30,
            changed_files=4,
            labels=["ai-assisted"],
            created_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        )
        fake.set_pull_commits(REPO, 7, SHAS)
        yield fake


def app_client(fake: FakeGitHub, private_key: str, *, auto_retry: bool = False) -> GitHub[AppAuthStrategy]:
    """The app's client. A cache strategy of its own keeps githubkit's process-wide cache (which holds installation
    tokens) out of it; http_cache=False keeps hishel from answering GETs from its cache."""
    auth = AppAuthStrategy(APP_ID, private_key)
    return GitHub(auth, base_url=fake.url, cache_strategy=MemCacheStrategy(), http_cache=False, auto_retry=auto_retry)


def installation_client(
    fake: FakeGitHub, private_key: str, *, auto_retry: bool = False
) -> GitHub[AppInstallationAuthStrategy]:
    github = app_client(fake, private_key, auto_retry=auto_retry)
    return github.with_auth(github.auth.as_installation(INSTALLATION))


@pytest.fixture
def gh(fake: FakeGitHub, keys: tuple[str, str]) -> GitHub[AppInstallationAuthStrategy]:
    return installation_client(fake, keys[0])


def test_app_jwt_routes(fake: FakeGitHub, keys: tuple[str, str]) -> None:
    github = app_client(fake, keys[0])
    app = github.rest.apps.get_authenticated().parsed_data
    installation = github.rest.apps.get_repo_installation("acme", "widgets").parsed_data
    assert app is not None and (app.id, app.slug) == (APP_ID, "tokentrail")
    assert (installation.id, installation.app_id, installation.app_slug) == (INSTALLATION, APP_ID, "tokentrail")
    assert isinstance(installation.account, SimpleUser) and installation.account.login == "acme"
    assert [c.auth for c in fake.calls] == ["jwt", "jwt"]


def test_jwt_signed_with_another_key_is_refused(fake: FakeGitHub) -> None:
    other_private, _ = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    github = app_client(fake, other_private)  # githubkit's namespaces hold the client weakly: keep a reference
    with pytest.raises(RequestFailed) as failure:
        github.rest.apps.get_authenticated()
    assert failure.value.response.status_code == 401
    assert fake.calls[-1].auth == "invalid"


def test_installation_token_minted_once_and_used(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    repo = gh.rest.repos.get("acme", "widgets").parsed_data
    assert (repo.full_name, repo.default_branch, repo.private) == (REPO, "trunk", True)
    gh.rest.repos.get("ACME", "Widgets")  # names are case-insensitive, as on GitHub
    minted = fake.calls_to("POST", f"/app/installations/{INSTALLATION}/access_tokens")
    assert len(minted) == 1 and minted[0].status == 201 and minted[0].auth == "jwt"
    assert [(c.auth, c.status) for c in fake.calls_to("GET", "/repos/")] == [("installation", 200)] * 2


def test_token_of_another_installation_sees_no_repository(fake: FakeGitHub, keys: tuple[str, str]) -> None:
    fake.add_installation(88, "other")
    github = app_client(fake, keys[0])
    other = github.with_auth(github.auth.as_installation(88))
    with pytest.raises(RequestFailed) as failure:
        other.rest.repos.get("acme", "widgets")
    assert failure.value.response.status_code == 404
    assert failure.value.response.json()["message"] == "Not Found"


def test_pull_request(gh: GitHub[AppInstallationAuthStrategy]) -> None:
    pr = gh.rest.pulls.get("acme", "widgets", 7).parsed_data
    assert (pr.number, pr.title, pr.user.login, pr.state, pr.merged) == (
        7,
        "Cache the pricing table",
        "alice",
        "open",
        False,
    )
    assert (pr.head.ref, pr.head.sha, pr.base.ref) == ("feat/cache", HEAD, "trunk")
    assert pr.head.repo is not None and pr.head.repo.full_name == REPO
    assert (pr.additions, pr.deletions, pr.changed_files, pr.commits) == (120, 30, 4, 3)
    assert [label.name for label in pr.labels] == ["ai-assisted"]
    assert pr.created_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC) and pr.merged_at is None


def test_merged_pull_from_a_deleted_fork(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    merged = datetime(2025, 3, 2, 12, 30, tzinfo=UTC)
    fake.add_pull(REPO, 8, user="mallory", head_repo=None, merged=True, merged_at=merged)
    pr = gh.rest.pulls.get("acme", "widgets", 8).parsed_data
    assert pr.head.repo is None and pr.head.user is None
    assert (pr.state, pr.merged, pr.merged_at, pr.closed_at) == ("closed", True, merged, merged)
    assert pr.merged_by is not None


def test_pull_commits_paginate_over_link_headers(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    pages = gh.rest.paginate(gh.rest.pulls.list_commits, owner="acme", repo="widgets", pull_number=7, per_page=2)
    assert [commit.sha for commit in pages] == SHAS
    calls = fake.calls_to("GET", f"/repos/{REPO}/pulls/7/commits")
    assert [c.query for c in calls] == [{"per_page": "2"}, {"per_page": "2", "page": "2"}]
    assert calls[1].raw_path.startswith("/repositories/")  # followed the Link header verbatim
    first = gh.rest.pulls.list_commits("acme", "widgets", 7, per_page=2)
    assert 'rel="next"' in first.headers["link"] and 'rel="last"' in first.headers["link"]
    assert first.parsed_data[1].parents[0].sha == SHAS[0]


def test_reviews(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.add_review(REPO, 7, "bob", "changes_requested", datetime(2025, 3, 1, 10, tzinfo=UTC))
    fake.add_review(REPO, 7, "carol", "APPROVED", datetime(2025, 3, 1, 11, tzinfo=UTC))
    reviews = gh.rest.pulls.list_reviews("acme", "widgets", 7).parsed_data
    assert [(r.user and r.user.login, r.state, r.commit_id) for r in reviews] == [
        ("bob", "CHANGES_REQUESTED", HEAD),
        ("carol", "APPROVED", HEAD),
    ]
    assert reviews[1].submitted_at == datetime(2025, 3, 1, 11, tzinfo=UTC)


def test_comments_create_update_and_list(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.add_comment(REPO, 7, "alice", "LGTM?")
    created = gh.rest.issues.create_comment("acme", "widgets", 7, body="Cost: $1.20")
    comment = created.parsed_data
    assert created.status_code == 201
    assert comment.user is not None and (comment.user.login, comment.user.type) == ("tokentrail[bot]", "Bot")
    assert isinstance(comment.performed_via_github_app, Integration) and comment.performed_via_github_app.id == APP_ID
    updated = gh.rest.issues.update_comment("acme", "widgets", comment.id, body="Cost: $2.40").parsed_data
    assert (updated.id, updated.body) == (comment.id, "Cost: $2.40")
    listed = list(
        gh.rest.paginate(gh.rest.issues.list_comments, owner="acme", repo="widgets", issue_number=7, per_page=1)
    )
    assert [(c.user and c.user.login, c.body) for c in listed] == [
        ("alice", "LGTM?"),
        ("tokentrail[bot]", "Cost: $2.40"),
    ]
    assert [c["body"] for c in fake.comments(REPO, 7)] == ["LGTM?", "Cost: $2.40"]
    assert fake.calls_to("PATCH", f"/repos/{REPO}/issues/comments/")[0].json_body == {"body": "Cost: $2.40"}
    assert gh.rest.pulls.get("acme", "widgets", 7).parsed_data.comments == 2


def test_comment_on_unknown_pull_is_404(gh: GitHub[AppInstallationAuthStrategy]) -> None:
    with pytest.raises(RequestFailed) as failure:
        gh.rest.issues.create_comment("acme", "widgets", 999, body="x")
    assert failure.value.response.status_code == 404


def test_check_runs(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    run = gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=HEAD, status="in_progress").parsed_data
    assert (run.name, run.head_sha, run.status, run.conclusion) == ("Tokentrail", HEAD, "in_progress", None)
    assert [p.number for p in run.pull_requests] == [7]
    assert run.app is not None and run.app.slug == "tokentrail"
    done = gh.rest.checks.update(
        "acme",
        "widgets",
        run.id,
        conclusion="neutral",
        output={"title": "AI spend $3.10", "summary": "3 sessions"},
    ).parsed_data
    assert (done.id, done.status, done.conclusion, done.output.title) == (
        run.id,
        "completed",
        "neutral",
        "AI spend $3.10",
    )
    assert done.completed_at is not None
    gh.rest.checks.create("acme", "widgets", name="Other", head_sha=HEAD)
    listed = gh.rest.checks.list_for_ref("acme", "widgets", HEAD, check_name="Tokentrail").parsed_data
    assert listed.total_count == 1 and listed.check_runs[0].id == run.id
    by_branch = gh.rest.checks.list_for_ref("acme", "widgets", "feat/cache").parsed_data
    assert {r.name for r in by_branch.check_runs} == {"Tokentrail", "Other"}
    assert [r["conclusion"] for r in fake.check_runs(REPO, HEAD) if r["name"] == "Tokentrail"] == ["neutral"]
    # GitHub wants a conclusion with status=completed; githubkit checks request bodies before sending them.
    sent = len(fake.calls)
    with pytest.raises(pydantic.ValidationError):
        gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=HEAD, status="completed")  # type: ignore[call-overload]
    assert len(fake.calls) == sent
    with pytest.raises(RequestFailed) as failure:
        gh.request(
            "POST", "/repos/acme/widgets/check-runs", json={"name": "T", "head_sha": HEAD, "status": "completed"}
        )
    assert failure.value.response.status_code == 422


def test_update_pull_moves_the_head(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    new_head = "d" * 40
    fake.update_pull(REPO, 7, head_sha=new_head)
    fake.set_pull_commits(REPO, 7, [*SHAS, new_head])
    pr = gh.rest.pulls.get("acme", "widgets", 7).parsed_data
    assert (pr.head.sha, pr.commits) == (new_head, 4)
    run = gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=new_head).parsed_data
    assert [p.number for p in run.pull_requests] == [7]
    stale = gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=HEAD).parsed_data
    assert stale.pull_requests == []


def test_content_file(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    text = "budget:\n  monthly_usd: 500\n" * 10  # long enough for GitHub's 60-column base64 lines
    fake.set_file(REPO, ".github/tokentrail.yml", text)
    fake.set_file(REPO, ".github/tokentrail.yml", "budget: {}\n", ref="feat/cache")
    content = gh.rest.repos.get_content("acme", "widgets", ".github/tokentrail.yml").parsed_data
    assert isinstance(content, ContentFile) and content.encoding == "base64"
    assert base64.b64decode(content.content).decode() == text
    at_ref = gh.rest.repos.get_content("acme", "widgets", ".github/tokentrail.yml", ref="feat/cache").parsed_data
    assert isinstance(at_ref, ContentFile) and base64.b64decode(at_ref.content) == b"budget: {}\n"
    with pytest.raises(RequestFailed) as failure:
        gh.rest.repos.get_content("acme", "widgets", "missing.yml")
    assert failure.value.response.status_code == 404
    assert failure.value.response.json()["message"] == "Not Found"


def test_unknown_route_is_github_404(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    with pytest.raises(RequestFailed) as failure:
        gh.rest.repos.list_branches("acme", "widgets")
    body = failure.value.response.json()
    assert (failure.value.response.status_code, body["message"]) == (404, "Not Found")
    assert "documentation_url" in body and fake.calls[-1].status == 404


def test_server_error_raises_request_failed(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.fail_next("GET", f"/repos/{REPO}/pulls/*", 502)
    with pytest.raises(RequestFailed) as failure:
        gh.rest.pulls.get("acme", "widgets", 7)
    assert failure.value.response.status_code == 502
    assert failure.value.response.json()["message"] == "Bad Gateway"
    assert gh.rest.pulls.get("acme", "widgets", 7).parsed_data.number == 7  # the fault was used up
    assert [c.status for c in fake.calls_to("GET", f"/repos/{REPO}/pulls/7")] == [502, 200]


def test_429_with_retry_after_is_secondary_rate_limit(
    fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]
) -> None:
    fake.fail_next("POST", "/repos/*/issues/*/comments", 429, retry_after=7)
    with pytest.raises(SecondaryRateLimitExceeded) as failure:
        gh.rest.issues.create_comment("acme", "widgets", 7, body="x")
    assert failure.value.retry_after == timedelta(seconds=7)
    assert failure.value.response.headers["retry-after"] == "7"
    assert fake.comments(REPO, 7) == []


def test_403_primary_rate_limit(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.fail_next("*", "/repos/*", 403, rate_limit_remaining_zero=True)
    with pytest.raises(PrimaryRateLimitExceeded) as failure:
        gh.rest.repos.get("acme", "widgets")
    assert timedelta(0) <= failure.value.retry_after <= timedelta(seconds=60)
    assert failure.value.response.headers["x-ratelimit-remaining"] == "0"


def test_403_secondary_rate_limit(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.fail_next("POST", "/repos/*/check-runs", 403, secondary_rate_limit=True, retry_after=30)
    with pytest.raises(SecondaryRateLimitExceeded) as failure:
        gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=HEAD)
    assert failure.value.retry_after == timedelta(seconds=30)
    # Without retry-after (and with requests left) githubkit sees a plain 403: only the message tells.
    fake.fail_next("POST", "/repos/*/check-runs", 403, secondary_rate_limit=True)
    with pytest.raises(RequestFailed) as plain:
        gh.rest.checks.create("acme", "widgets", name="Tokentrail", head_sha=HEAD)
    assert not isinstance(plain.value, SecondaryRateLimitExceeded)
    assert plain.value.response.json()["message"] == SECONDARY_MESSAGE


def test_faults_repeat_and_hit_the_token_endpoint(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    fake.fail_next("POST", "/app/installations/*/access_tokens", 500, times=2)
    for _ in range(2):
        # raised inside httpx's auth flow, the token's RequestFailed reaches the caller wrapped in a RequestError
        with pytest.raises(RequestError) as failure:
            gh.rest.repos.get("acme", "widgets")
        assert isinstance(failure.value.exc, RequestFailed) and failure.value.exc.response.status_code == 500
    assert gh.rest.repos.get("acme", "widgets").parsed_data.name == "widgets"
    assert [c.status for c in fake.calls_to("POST", "/app/installations/")] == [500, 500, 201]


def test_default_auto_retry_rides_out_one_server_error(fake: FakeGitHub, keys: tuple[str, str]) -> None:
    github = installation_client(fake, keys[0], auto_retry=True)  # githubkit's default: 1 s, then 4 s, 9 s
    fake.fail_next("GET", f"/repos/{REPO}", 503)
    assert github.rest.repos.get("acme", "widgets").parsed_data.id > 0
    assert [c.status for c in fake.calls_to("GET", f"/repos/{REPO}")] == [503, 200]


async def test_async_client(fake: FakeGitHub, gh: GitHub[AppInstallationAuthStrategy]) -> None:
    pr = (await gh.rest.pulls.async_get("acme", "widgets", 7)).parsed_data
    comment = (await gh.rest.issues.async_create_comment("acme", "widgets", 7, body="async")).parsed_data
    assert pr.head.sha == HEAD and comment.body == "async"
    assert [c["body"] for c in fake.comments(REPO, 7)] == ["async"]


def test_fixture_defaults(fake_github: FakeGitHub, keys: tuple[str, str]) -> None:
    assert fake_github.url.startswith("http://127.0.0.1:") and fake_github.calls == []
    fake_github.add_installation(1, "solo")
    fake_github.add_repo("solo/repo")  # the only installation is the default one
    auth = AppInstallationAuthStrategy(fake_github.app_id, keys[0], 1)
    github = GitHub(auth, base_url=fake_github.url, cache_strategy=MemCacheStrategy(), http_cache=False)
    assert github.rest.repos.get("solo", "repo").parsed_data.full_name == "solo/repo"
