"""Dashboard sessions against a real `tokentrail serve` on SQLite and PostgreSQL (DESIGN §9), from the attacker's
side: a login or logout posted from another site does nothing; the cookie holds a session id, never the API token;
signing out ends the session on the server; `tokentrail token revoke` refuses the token everywhere and ends its
sessions; every page forbids framing and scripts."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.dashboard import COOKIE
from app.db import utcnow
from app.tables import DASHBOARD_SESSIONS, TOKENS
from app.tokens import hash_token
from tests.cli_runner import run_cli
from tests.conftest import LiveServer, make_token, start_server

PUBLIC_URL = "https://tokentrail.example.com"
SESSIONS = DASHBOARD_SESSIONS
EVIL = "https://evil.example"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        database_url=database_url, log=tmp_path / "server.log", env={"TOKENTRAIL_PUBLIC_URL": PUBLIC_URL}
    )
    yield live
    live.stop()


@pytest.fixture
def token(factory: sessionmaker[Session]) -> str:
    return make_token(factory, "acme")


def login(server: LiveServer, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/login", data={"token": token}, headers=headers, follow_redirects=False, timeout=30)


def session_cookie(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    value = response.cookies.get(COOKIE)
    assert value, response.headers
    return value


def cookie(session_id: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session_id}"}


def page(server: LiveServer, path: str, session_id: str | None = None) -> httpx.Response:
    headers = cookie(session_id) if session_id else {}
    return httpx.get(f"{server.url}{path}", headers=headers, follow_redirects=False, timeout=30)


def signed_in(server: LiveServer, session_id: str) -> bool:
    response = page(server, "/dashboard/acme", session_id)
    if response.status_code == 303:
        assert response.headers["location"] == "/"
        return False
    assert response.status_code == 200, response.text
    return True


def test_a_login_posted_from_another_site_sets_no_cookie(server: LiveServer, token: str) -> None:
    attempts = {
        "Origin of another site": {"Origin": EVIL},
        "Origin null (a sandboxed frame)": {"Origin": "null"},
        "Referer of another site": {"Referer": f"{EVIL}/login-csrf.html"},
        "another port of the same host": {"Origin": server.url.rsplit(":", 1)[0] + ":1"},
        "http where the public URL is https": {"Origin": PUBLIC_URL.replace("https:", "http:")},
        "neither Origin nor Referer": {},
    }
    for why, headers in attempts.items():
        response = login(server, token, **headers)
        assert response.status_code == 403, f"{why}: {response.status_code} {response.text}"
        assert "origin" in response.json()["detail"].lower(), why
        assert "set-cookie" not in response.headers, why


def test_a_same_origin_login_keeps_a_session_id_not_the_token(server: LiveServer, token: str) -> None:
    for headers in ({"Origin": server.url}, {"Origin": PUBLIC_URL}, {"Referer": f"{server.url}/"}):
        response = login(server, token, **headers)
        session_id = session_cookie(response)
        assert token not in response.headers["set-cookie"]
        assert session_id != token and not session_id.startswith("tt_")
        flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
        assert {"httponly", "samesite=lax", "path=/", "secure"} <= flags
        assert signed_in(server, session_id)
    # the token itself is no session: a cookie holding it opens nothing
    assert not signed_in(server, token)


def test_sign_out_is_a_same_origin_post_that_ends_the_session(server: LiveServer, token: str) -> None:
    session_id = session_cookie(login(server, token, Origin=server.url))

    assert httpx.get(f"{server.url}/logout", headers=cookie(session_id), timeout=30).status_code == 405
    cross_site = httpx.post(f"{server.url}/logout", headers=cookie(session_id) | {"Origin": EVIL}, timeout=30)
    assert cross_site.status_code == 403, cross_site.text
    assert signed_in(server, session_id)

    out = httpx.post(f"{server.url}/logout", headers=cookie(session_id) | {"Origin": server.url}, timeout=30)
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert out.cookies.get(COOKIE) in (None, "") or "max-age=0" in out.headers["set-cookie"].lower()
    # a copy of the cookie kept elsewhere is worth nothing now
    assert not signed_in(server, session_id)
    assert 'action="/logout"' not in page(server, "/").text


def test_the_sign_out_control_is_a_form(server: LiveServer, token: str) -> None:
    session_id = session_cookie(login(server, token, Origin=server.url))
    html = page(server, "/dashboard/acme", session_id).text
    assert re.search(r'<form method="post" action="/logout">\s*<button type="submit">Sign out</button>', html)
    assert 'href="/logout"' not in html


def test_a_revoked_token_is_refused_everywhere_and_its_sessions_end(
    server: LiveServer, token: str, database_url: str, factory: sessionmaker[Session]
) -> None:
    other = make_token(factory, "acme")
    kept = session_cookie(login(server, other, Origin=server.url))
    sessions = [session_cookie(login(server, token, Origin=server.url)) for _ in range(2)]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/v1/repos/acme/widgets/usage", headers=bearer, timeout=30).status_code == 200

    with factory() as session:
        token_id = str(session.execute(sa.select(TOKENS.c.id).where(TOKENS.c.token_hash == hash_token(token))).scalar())
    listed = run_cli("token", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.split()[:1] == [token_id]]
    assert line.split()[1:3] == ["acme", "test"] and line.split()[-1] == "active"
    assert line.split()[4] != "never"  # the API call above was recorded
    assert token not in listed.stdout

    revoked = run_cli("token", "revoke", token_id, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "2 dashboard sessions" in revoked.stdout

    api = httpx.get(f"{server.url}/v1/repos/acme/widgets/usage", headers=bearer, timeout=30)
    assert api.status_code == 401 and "revoked" in api.json()["detail"]
    record = {"id": "r1", "timestamp": utcnow().isoformat(), "model": "gpt-5", "repo": "acme/widgets"}
    ingest = httpx.post(f"{server.url}/v1/usage", json=[record], headers=bearer, timeout=30)
    assert ingest.status_code == 401, ingest.text
    for session_id in sessions:
        assert not signed_in(server, session_id)
    again = login(server, token, Origin=server.url)
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert signed_in(server, kept)  # another token's session is untouched

    listed = run_cli("token", "list", database_url=database_url)
    [line] = [line for line in listed.stdout.splitlines() if line.split()[:1] == [token_id]]
    assert line.split()[-2] == "revoked"
    assert run_cli("token", "revoke", "99", database_url=database_url).returncode == 2


def test_an_expired_session_is_refused(server: LiveServer, token: str, factory: sessionmaker[Session]) -> None:
    session_id = session_cookie(login(server, token, Origin=server.url))
    assert signed_in(server, session_id)
    with factory() as session, session.begin():
        session.execute(sa.update(SESSIONS).values(expires_at=utcnow()))
    assert not signed_in(server, session_id)


def test_a_login_body_over_4_kb_is_refused(server: LiveServer, token: str) -> None:
    response = httpx.post(
        f"{server.url}/login",
        content=b"token=" + b"x" * 5000,
        headers={"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"]


def style_hashes(html: str) -> set[str]:
    blocks = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    assert blocks
    return {"'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in blocks}


def directives(policy: str) -> dict[str, set[str]]:
    found = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = set(values)
    return found


def assert_guarded(response: httpx.Response, what: str) -> None:
    assert response.headers.get("x-frame-options") == "DENY", what
    assert response.headers.get("referrer-policy") in {"same-origin", "no-referrer"}, what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == {"'none'"}, what
    assert policy["frame-ancestors"] == {"'none'"}, what
    assert policy["form-action"] == {"'self'"}, what
    assert "script-src" not in policy, what  # default-src 'none': no script at all
    assert "'unsafe-inline'" not in policy.get("style-src", set()), what
    if response.headers.get("content-type", "").startswith("text/html"):
        assert style_hashes(response.text) <= policy["style-src"], what


def test_every_page_forbids_framing_and_scripts(server: LiveServer, token: str) -> None:
    session_id = session_cookie(login(server, token, Origin=server.url))
    responses = {
        "login page": page(server, "/"),
        "owner page": page(server, "/dashboard/acme", session_id),
        "another owner's page (403)": page(server, "/dashboard/umbrella", session_id),
        "unknown pull request (404)": page(server, "/dashboard/acme/widgets/pulls/3", session_id),
        "bad period (422)": page(server, "/dashboard/acme?since=soon", session_id),
        "refused login (401)": login(server, "tt_wrong", Origin=server.url),
        "redirect to the login": page(server, "/dashboard/acme"),
        "API": httpx.get(f"{server.url}/v1/repos/acme/widgets/usage", timeout=30),
        "health": page(server, "/healthz"),
    }
    for what, response in responses.items():
        assert_guarded(response, what)
    assert responses["owner page"].status_code == 200
    assert "<script" not in responses["owner page"].text


def test_demo_mode_still_opens_without_login(database_url: str, tmp_path: Path) -> None:
    demo = start_server(
        database_url=database_url,
        log=tmp_path / "demo.log",
        env={"TOKENTRAIL_DEMO_MODE": "true", "TOKENTRAIL_DEMO_OWNER": "acme"},
    )
    try:
        home = page(demo, "/")
        assert home.status_code == 303 and home.headers["location"] == "/dashboard/acme"
        owner = page(demo, "/dashboard/acme")
        assert owner.status_code == 200 and "demo mode" in owner.text
        assert_guarded(owner, "demo page")
        out = httpx.post(f"{demo.url}/logout", headers={"Origin": demo.url}, follow_redirects=False, timeout=30)
        assert out.status_code == 303
    finally:
        demo.stop()
