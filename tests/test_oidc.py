"""GitHub Actions OIDC tokens (DESIGN §8): `app.oidc` against a local signing key and JWKS, then the PR endpoints
of a real `tokentrail serve` on SQLite and PostgreSQL: a valid run token reads its own repository's PR; expired,
not-yet-valid, wrongly addressed, unknown-key, tampered and unsigned tokens get 401; a token of another
repository, or of an owner without an installation, gets 403."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import jwt
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app import oidc
from app.oidc import ISSUER, LEEWAY_SECONDS, MAX_AGE, MIN_REFRESH, JwksCache, OidcError, verify_actions_token
from tests.conftest import LiveServer, free_port, make_token
from tests.github_payloads import make_installation_event
from tests.oidc_issuer import OidcIssuer, b64url
from tests.oidc_scene import (  # noqa: F401 - fixtures
    AUDIENCE,
    NUMBER,
    REPO,
    budget_settled,
    comparable,
    get,
    issuer,
    post_usage,
    seed,
    send_webhook,
    server,
    usage_record,
    wait_for,
)

# ---------------------------------------------------------------- seeding a real server over HTTP


# ---------------------------------------------------------------- app.oidc: the JWKS cache


class Clock:
    def __init__(self) -> None:
        self.now = 100_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(oidc, "time", SimpleNamespace(monotonic=fake))
    return fake


def test_jwks_is_fetched_once_and_reused(issuer: OidcIssuer, clock: Clock) -> None:
    cache = JwksCache(issuer.jwks_url)
    first = cache.key(issuer.kid)
    clock.now += MIN_REFRESH * 5
    assert cache.key(issuer.kid) is first
    assert issuer.jwks_requests == 1
    claims = jwt.decode(issuer.mint(), first.key, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["repository"] == REPO


def test_unknown_kid_refreshes_the_jwks(issuer: OidcIssuer, clock: Clock) -> None:
    cache = JwksCache(issuer.jwks_url)
    cache.key(issuer.kid)
    issuer.add_key("rotated-in")  # GitHub publishes a new key
    clock.now += MIN_REFRESH + 1
    assert cache.key("rotated-in").key_id == "rotated-in"
    assert issuer.jwks_requests == 2
    identity = verify_actions_token(issuer.mint(kid="rotated-in"), jwks=cache, audience=AUDIENCE)
    assert identity.repository == REPO


def test_refreshes_for_unknown_kids_are_rate_limited(issuer: OidcIssuer, clock: Clock) -> None:
    cache = JwksCache(issuer.jwks_url)
    cache.key(issuer.kid)
    for forged in range(20):
        clock.now += 0.1
        with pytest.raises(OidcError, match="unknown key") as refused:
            cache.key(f"forged-{forged}")
        assert refused.value.status == 401
    assert issuer.jwks_requests == 1  # forged kids did not make us hammer the JWKS endpoint
    clock.now += MIN_REFRESH
    with pytest.raises(OidcError, match="unknown key"):
        cache.key("forged-again")
    assert issuer.jwks_requests == 2  # one refresh once the minimum interval has passed


def test_keys_expire_after_max_age(issuer: OidcIssuer, clock: Clock) -> None:
    cache = JwksCache(issuer.jwks_url)
    old = issuer.kid
    cache.key(old)
    issuer.published = [kid for kid in issuer.published if kid != old]  # GitHub retires the key
    issuer.add_key("new")
    clock.now += MAX_AGE - 1
    assert cache.key(old).key_id == old  # still cached
    assert issuer.jwks_requests == 1
    clock.now += 2
    with pytest.raises(OidcError, match="unknown key"):
        cache.key(old)  # past MAX_AGE the JWKS is read again and the retired key is gone
    assert issuer.jwks_requests == 2
    assert cache.key("new").key_id == "new"


def test_unreachable_jwks_refuses_the_token(clock: Clock) -> None:
    cache = JwksCache(f"http://127.0.0.1:{free_port()}/jwks", timeout=2)
    with pytest.raises(OidcError, match="cannot read the OIDC signing keys") as refused:
        cache.key("any")
    assert refused.value.status == 401


# ---------------------------------------------------------------- app.oidc: verifying a token


def bad_tokens(issuer: OidcIssuer) -> dict[str, str]:
    """Every token that proves nothing, by why."""
    now = int(time.time())
    issuer.add_key("not-published", publish=False)
    valid = issuer.mint()
    header, payload, signature = valid.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    tampered = b64url(json.dumps({**claims, "repository": "acme/widgets", "exp": now + 86_400}).encode())
    return {
        "expired": issuer.mint(iat=now - 900, nbf=now - 900, exp=now - LEEWAY_SECONDS - 60),
        "not yet valid": issuer.mint(nbf=now + LEEWAY_SECONDS + 240),
        "issued in the future": issuer.mint(iat=now + LEEWAY_SECONDS + 240, nbf=now),
        "wrong audience": issuer.mint(aud="https://evil.example.com"),
        "audience of GitHub's default": issuer.mint(aud="https://github.com/acme"),
        "wrong issuer": issuer.mint(iss="https://token.actions.evil.example.com"),
        "unknown key": issuer.mint(kid="not-published"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "alg none": issuer.mint_unsigned(),
        "HS256 with the public key": issuer.mint_hs256_with_public_key(),
        "no repository claim": issuer.mint(repository=None),
        "no exp": issuer.mint(exp=None),
        "garbage": "eyJhbGciOiJSUzI1NiJ9.not-base64.at-all",
    }


def test_verify_accepts_a_valid_token(issuer: OidcIssuer) -> None:
    identity = verify_actions_token(issuer.mint(), jwks=JwksCache(issuer.jwks_url), audience=AUDIENCE)
    assert identity.repository == REPO and identity.owner == "acme"
    assert identity.claims["iss"] == ISSUER
    assert identity.claims["sub"] == "repo:acme/widgets:pull_request"


def test_verify_allows_small_clock_skew(issuer: OidcIssuer) -> None:
    now = int(time.time())
    skewed = issuer.mint(iat=now - 600, nbf=now + LEEWAY_SECONDS // 2, exp=now - LEEWAY_SECONDS // 2)
    assert verify_actions_token(skewed, jwks=JwksCache(issuer.jwks_url), audience=AUDIENCE).repository == REPO


def test_verify_lowercases_the_repository(issuer: OidcIssuer) -> None:
    token = issuer.mint(repository="Acme/Widgets")
    identity = verify_actions_token(token, jwks=JwksCache(issuer.jwks_url), audience=AUDIENCE)
    assert (identity.repository, identity.owner) == ("acme/widgets", "acme")


def test_verify_refuses_tokens_that_prove_nothing(issuer: OidcIssuer) -> None:
    cache = JwksCache(issuer.jwks_url)
    for why, token in bad_tokens(issuer).items():
        with pytest.raises(OidcError) as refused:
            verify_actions_token(token, jwks=cache, audience=AUDIENCE)
        assert refused.value.status == 401, why


# ---------------------------------------------------------------- the API of a real server


@pytest.fixture
def api_token(factory: sessionmaker[Session]) -> str:
    return make_token(factory, "acme")


PULL = f"/v1/repos/{REPO}/pulls/{NUMBER}"


def test_a_valid_run_token_reads_its_pull_request(server: LiveServer, issuer: OidcIssuer, api_token: str) -> None:
    seed(server.url, api_token)
    token = issuer.mint()

    budget = get(server, PULL + "/budget", token, max_cost="0.4")
    assert budget.status_code == 200, budget.text
    verdict = budget.json()
    assert verdict["status"] == "fail" and verdict["cost_usd"] == "0.5"
    assert "max_cost_per_pr" in verdict["reasons"][0]
    assert verdict["limits"]["max_cost_per_pr"] == "0.4"
    assert (verdict["number"], verdict["records"], verdict["pending_records"]) == (NUMBER, 2, 0)

    summary = get(server, PULL, token)
    assert summary.status_code == 200, summary.text
    assert summary.json()["repo"] == REPO and summary.json()["usage"]["cost_usd"] == "0.5"

    comment = get(server, PULL + "/comment.md", token)
    assert comment.status_code == 200, comment.text
    assert comment.headers["content-type"].startswith("text/markdown")
    # the same report either way (but for the time it was generated)
    assert comparable(comment.text) == comparable(get(server, PULL + "/comment.md", api_token).text)
    assert "$0.50" in comment.text


def test_tokens_that_prove_nothing_get_401(server: LiveServer, issuer: OidcIssuer, api_token: str) -> None:
    seed(server.url, api_token)
    assert get(server, PULL + "/budget", issuer.mint()).status_code == 200  # the JWKS is known from here on
    for why, token in bad_tokens(issuer).items():
        for path in (PULL + "/budget", PULL, PULL + "/comment.md"):
            response = get(server, path, token)
            assert response.status_code == 401, f"{why} on {path}: {response.status_code} {response.text}"
            assert response.headers["www-authenticate"] == "Bearer", why
            assert response.json()["detail"], why
    expired = get(server, PULL + "/budget", bad_tokens(issuer)["expired"]).json()["detail"]
    assert "expired" in expired
    assert "audience" in get(server, PULL + "/budget", issuer.mint(aud="https://x.example")).json()["detail"]
    assert "issuer" in get(server, PULL + "/budget", issuer.mint(iss="https://x.example")).json()["detail"]
    # dozens of forged key ids above, yet the JWKS was not fetched for each of them
    assert issuer.jwks_requests <= 3


def test_a_run_token_reads_its_own_repository_only(server: LiveServer, issuer: OidcIssuer, api_token: str) -> None:
    seed(server.url, api_token)
    seed(server.url, api_token, repo="acme/other", number=3, costs=("0.10",), installation=False)
    other = get(server, "/v1/repos/acme/other/pulls/3/budget", issuer.mint())
    assert other.status_code == 403, other.text
    assert "acme/widgets" in other.json()["detail"] and "acme/other" in other.json()["detail"]
    for path in ("/v1/repos/acme/other/pulls/3", "/v1/repos/acme/other/pulls/3/comment.md"):
        assert get(server, path, issuer.mint()).status_code == 403, path
    # the API token of the owner reads both
    assert get(server, "/v1/repos/acme/other/pulls/3/budget", api_token).status_code == 200
    # a token minted for acme/other does read acme/other
    assert get(server, "/v1/repos/acme/other/pulls/3/budget", issuer.mint(repository="acme/other")).status_code == 200
    # read access only: a run token is no API token for ingesting or listing usage
    record = usage_record("oidc-write", cost="1", at=datetime.now(UTC))
    write = httpx.post(f"{server.url}/v1/usage", json=[record], headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert write.status_code == 401, write.text
    assert get(server, f"/v1/repos/{REPO}/usage", issuer.mint()).status_code == 401


def test_an_owner_without_installation_gets_403(
    server: LiveServer, issuer: OidcIssuer, factory: sessionmaker[Session]
) -> None:
    umbrella = make_token(factory, "umbrella")
    seed(server.url, umbrella, repo="umbrella/app", number=5, costs=("0.10",), installation=False)
    token = issuer.mint(repository="umbrella/app")
    response = get(server, "/v1/repos/umbrella/app/pulls/5/budget", token)
    assert response.status_code == 403, response.text
    assert "not installed" in response.json()["detail"]
    assert get(server, "/v1/repos/umbrella/app/pulls/5/budget", umbrella).status_code == 200  # the PR is there

    send_webhook(server.url, "installation", make_installation_event(account="umbrella", repos=("umbrella/app",)))
    wait_for(
        lambda: get(server, "/v1/repos/umbrella/app/pulls/5/budget", token).status_code == 200,
        what="the installation to grant access",
    )
