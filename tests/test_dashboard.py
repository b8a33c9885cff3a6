"""The dashboard's pages on SQLite and PostgreSQL: login and its cookie, who may see what, and pages that show the
same figures as the /report JSON, in accessible markup (headings, captioned tables, titled SVG charts)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.dashboard import COOKIE
from app.formatting import format_pct, format_usd
from app.settings import Settings
from tests.dashboard_seed import PERIOD, WIDGETS, seeded_client
from tests.support import SAME_ORIGIN, sign_in

# No chart ranks people by spend (issue 15): authors are a table by name, with outcomes beside spend.
OVERVIEW_CHARTS = ["chart-spend", "chart-outcomes", "chart-merged", "chart-agents", "chart-branches"]
# A repository's page draws its weekly share of spend in review rounds too.
REPO_CHARTS = ["chart-spend", "chart-outcomes", "chart-merged", "chart-review-loops", "chart-agents", "chart-branches"]


class Outline(HTMLParser):
    """What a test needs of a page's structure: headings, tables and their captions, th scopes, svgs and titles."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.tables = 0
        self.captions = 0
        self.th_scopes: list[str | None] = []
        self.svgs: list[dict[str, str | None]] = []
        self.svg_titles: list[str] = []
        self.scripts = 0
        self.external: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.stack.append(tag)
        self._text = []
        if tag == "table":
            self.tables += 1
        elif tag == "caption":
            self.captions += 1
        elif tag == "th":
            self.th_scopes.append(attributes.get("scope"))
        elif tag == "svg":
            self.svgs.append(attributes)
        elif tag == "script":
            self.scripts += 1
        for name in ("src", "href"):
            value = attributes.get(name) or ""
            if value.startswith(("http://", "https://", "//")) and "github.com" not in value:
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text).strip()
        if tag in ("h1", "h2", "h3"):
            self.headings.append((tag, text))
        if tag == "title" and "svg" in self.stack:
            self.svg_titles.append(text)
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def usd(value: str | None) -> str:
    assert value is not None
    return format_usd(Decimal(value))


@pytest.fixture
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with seeded_client(settings, factory) as pair:
        yield pair


def test_login_sets_a_session_cookie_and_logout_clears_it(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    page = client.get("/")
    assert page.status_code == 200 and 'name="token"' in page.text and 'action="/login"' in page.text

    refused = client.post("/login", data={"token": "tt_not-a-token"}, headers=SAME_ORIGIN, follow_redirects=False)
    assert refused.status_code == 401 and "not valid" in refused.text
    assert COOKIE not in refused.headers.get("set-cookie", "")

    answer = client.post("/login", data={"token": tokens["acme"]}, headers=SAME_ORIGIN, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/acme"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and tokens["acme"] not in cookie  # a session id, not the token
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # the public URL is http://
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/acme"

    out = client.post("/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "max-age=0" in out.headers["set-cookie"].lower()
    client.cookies.clear()
    assert client.get("/dashboard/acme", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_behind_https(settings: Settings, factory: sessionmaker[Session]) -> None:
    secure = settings.model_copy(update={"public_url": "https://tokentrail.example.com"})
    with seeded_client(secure, factory) as (client, tokens):
        answer = client.post("/login", data={"token": tokens["acme"]}, headers=SAME_ORIGIN, follow_redirects=False)
    assert "secure" in {part.strip().lower() for part in answer.headers["set-cookie"].split(";")}


def test_who_may_see_what(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    for path in ("/dashboard/acme", f"/dashboard/{WIDGETS}", f"/dashboard/{WIDGETS}/pulls/1"):
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/"
    client.cookies.set(COOKIE, "tt_forged")
    assert client.get("/dashboard/acme", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, tokens["acme"])  # the token itself is no session
    assert client.get("/dashboard/acme", follow_redirects=False).status_code == 303
    client.cookies.clear()
    sign_in(client, tokens["acme"])
    for path in ("/dashboard/umbrella", "/dashboard/umbrella/secret", "/dashboard/Umbrella/secret/pulls/1"):
        denied = client.get(path)
        assert denied.status_code == 403, path
        assert "9.99" not in denied.text
    assert client.get(f"/dashboard/{WIDGETS}/pulls/999").status_code == 404
    assert client.get("/dashboard/acme", params={"since": "soon"}).status_code == 422
    assert client.get("/dashboard/acme", params={"since": "2026-10-10", "until": "2026-10-01"}).status_code == 422
    details = client.get(f"/repos/{WIDGETS}/pulls/1", follow_redirects=False)
    assert details.status_code == 307 and details.headers["location"] == f"/dashboard/{WIDGETS}/pulls/1"


def test_report_api_authorisation(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    other = {"Authorization": f"Bearer {tokens['umbrella']}"}
    assert client.get(f"/v1/repos/{WIDGETS}/report").status_code == 401
    assert client.get(f"/v1/repos/{WIDGETS}/report", headers=other).status_code == 403
    assert client.get("/v1/orgs/acme/report").status_code == 401
    assert client.get("/v1/orgs/acme/report", headers=other).status_code == 403
    acme = {"Authorization": f"Bearer {tokens['acme']}"}
    bad = client.get(f"/v1/repos/{WIDGETS}/report", params={"since": "yesterday"}, headers=acme)
    assert bad.status_code == 422 and "yesterday" in bad.json()["detail"]
    assert client.get("/v1/orgs/acme/report", params={"since": "2020-01-01"}, headers=acme).status_code == 422


def _assert_accessible(html: str, charts: list[str]) -> Outline:
    page = outline(html)
    assert [level for level, _ in page.headings].count("h1") == 1
    assert sum(1 for level, _ in page.headings if level == "h2") >= 3
    assert page.tables > 0 and page.tables == page.captions
    assert page.th_scopes and all(scope in ("col", "row") for scope in page.th_scopes)
    assert page.scripts == 0 and page.external == []
    ids = [svg.get("aria-labelledby", "").split()[0].removesuffix("-title") for svg in page.svgs]  # type: ignore[union-attr]
    assert ids == charts
    assert all(svg.get("role") == "img" for svg in page.svgs)
    assert len(page.svg_titles) >= len(charts) and all(page.svg_titles)
    assert 'name="viewport"' in html
    return page


def test_repository_page_shows_the_report_figures(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    report = client.get(
        f"/v1/repos/{WIDGETS}/report", params=PERIOD, headers={"Authorization": f"Bearer {tokens['acme']}"}
    )
    body: dict[str, Any] = report.json()
    sign_in(client, tokens["acme"])
    page = client.get(f"/dashboard/{WIDGETS}", params=PERIOD)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    _assert_accessible(html, REPO_CHARTS)
    # The trend chart's points are the weekly shares of the JSON (the table below repeats them as text).
    for loops in body["review_loops"]:
        for week in loops["by_week"]:
            assert f"wk {week['week'][5:]}: {format_pct(Decimal(week['share']))}" in html
    assert body["cache"]["cache_read_tokens"] == 0 and 'data-figure="cache">No call in the period' in html

    assert f'data-figure="total">{usd(body["cost_usd"])}<' in html
    assert f'data-figure="wasted">{usd(body["spend_that_produced_nothing_usd"])}<' in html
    assert f'data-figure="per-line">{usd(body["merged"]["cost_per_changed_line_usd"])}<' in html
    for outcome, figures in body["outcomes"].items():
        assert f'data-outcome="{outcome}">{usd(figures["cost_usd"])}<' in html
    for week in body["cost_per_merged_line_by_week"]:
        assert week["week"] in html and usd(week["cost_per_changed_line_usd"]) in html
    for pull in body["top_pulls"]:
        assert f'href="/dashboard/{WIDGETS}/pulls/{pull["number"]}"' in html
        assert usd(pull["cost_usd"]) in html and usd(pull["total_cost_usd"]) in html
        assert usd(pull["cost_per_changed_line_usd"]) in html
    for row in body["by_author"] + body["by_agent"] + body["by_model"] + body["unmatched_by_branch"]:
        name = row.get("author") or row.get("agent") or row.get("model") or row.get("branch")
        assert f">{name}" in html and usd(row["cost_usd"]) in html
    assert "default branch" in html
    assert "2 calls with unknown prices are not included" in html
    assert "Write the guide &lt;draft&gt; &amp; co" in html and "<draft>" not in html  # autoescaped
    assert 'value="2026-10-03"' in html and 'value="2026-10-16"' in html


def test_owner_page_lists_repositories_with_their_figures(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    body = client.get(
        "/v1/orgs/acme/report", params=PERIOD, headers={"Authorization": f"Bearer {tokens['acme']}"}
    ).json()
    sign_in(client, tokens["acme"])
    html = client.get("/dashboard/acme", params=PERIOD).text
    _assert_accessible(html, ["chart-repositories", *OVERVIEW_CHARTS])
    assert f'data-figure="total">{usd(body["cost_usd"])}<' in html
    for repo in body["repositories"]:
        assert f'href="/dashboard/{repo["repo"]}?since=2026-10-03&amp;until=2026-10-16"' in html
        assert usd(repo["cost_usd"]) in html
    assert "umbrella" not in html and "$9.99" not in html


def test_pull_request_page_renders_the_comment_content(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    auth = {"Authorization": f"Bearer {tokens['acme']}"}
    summary = client.get(f"/v1/repos/{WIDGETS}/pulls/1", headers=auth).json()
    sign_in(client, tokens["acme"])
    html = client.get(f"/dashboard/{WIDGETS}/pulls/1").text
    page = _assert_accessible(html, ["chart-timeline"])
    assert ("h1", "#1 Add a cache layer") in page.headings
    assert f'data-figure="pr-total">{usd(summary["usage"]["cost_usd"])}<' in html
    assert f"{usd(summary['cost_per_changed_line_usd'])} per changed line" in html
    assert "+300 −100 in 3 files" in html
    assert "Cost between pushes" in page.svg_titles
    assert "1111111" in html and "bbbbbbb" in html and "$0.10" in html and "$2.00" in html
    for model in summary["by_model"]:
        assert f">{model['model']}<" in html and usd(model["cost_usd"]) in html

    closed = client.get(f"/dashboard/{WIDGETS}/pulls/2").text
    assert "$3.00 spent on work that was not merged." in closed


def test_demo_mode_opens_the_demo_owner_without_login(settings: Settings, factory: sessionmaker[Session]) -> None:
    demo = settings.model_copy(update={"demo_mode": True, "demo_owner": "acme"})
    with seeded_client(demo, factory) as (client, tokens):
        assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/acme"
        page = client.get(f"/dashboard/{WIDGETS}", params=PERIOD)
        assert page.status_code == 200 and "$6.65" in page.text and "demo mode" in page.text
        assert client.get("/dashboard/umbrella").status_code == 403
        sign_in(client, tokens["umbrella"])  # a real login still wins
        assert client.get("/dashboard/umbrella", params=PERIOD).status_code == 200
