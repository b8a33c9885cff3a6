"""Bare URLs from user data are not links in the bot's comment or check run (DESIGN §6): GitHub auto-links
`http://`, `https://`, `ftp://`, `www.` and e-mail addresses in a comment, so a model or actor name such as
`http://tracker.example/p.png` would become a link we post. Rendered here with cmark-gfm, GitHub's own markdown
renderer with its autolink extension: the only links left are Tokentrail's own, and the text still reads the same
to a person."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from app.render import escape_md, render_check_run, render_comment
from tests.golden import assert_golden
from tests.support import make_actor, make_model, make_pr, make_report, make_review

ZWJ = "\u200d"
LINKY = {
    "http": "http://tracker.example/p.png",
    "https in capitals": "HTTPS://evil.example/x?y=1",
    "ftp": "ftp://files.example/payload",
    "www": "www.evil.example",
    "e-mail": "alice@evil.example",
    "mailto": "mailto:bob@evil.example",
    "inside a name": "gpt-5 (see https://evil.example/pricing)",
}


class Links(HTMLParser):
    """The hrefs of a rendered page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def on_github(markdown: str) -> Links:
    """The markdown as GitHub renders a comment: GFM with its extensions (autolink, tables, …)."""
    parser = Links()
    parser.feed(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))
    return parser


def reads_as(links: Links) -> str:
    """The rendered text as a person reads it: zero-width characters are invisible."""
    return "".join(links.text).replace(ZWJ, "").strip()


@pytest.mark.parametrize("name", LINKY.values(), ids=LINKY.keys())
def test_escape_md_leaves_no_autolink(name: str) -> None:
    assert on_github(name).hrefs != []  # as it is, GitHub links it
    escaped = escape_md(name)
    assert on_github(escaped).hrefs == []
    assert reads_as(on_github(escaped)) == name


def test_escape_md_breaks_each_autolink_with_an_invisible_joiner() -> None:
    assert escape_md("http://tracker.example/p.png") == f"http{ZWJ}://tracker.example/p.png"
    assert escape_md("see HTTPS://a.example or www.b.example") == f"see HTTPS{ZWJ}://a.example or www{ZWJ}.b.example"
    assert escape_md("ftp://f.example") == f"ftp{ZWJ}://f.example"
    assert escape_md("alice@evil.example") == f"alice@{ZWJ}evil.example"
    # what only looks similar is left alone
    assert escape_md("httpx wwwhat example.com") == "httpx wwwhat example.com"


def test_urls_in_names_are_no_links_in_the_comment() -> None:
    report = make_report(
        by_model=tuple(make_model(model=name, provider="www.provider.example") for name in LINKY.values()),
        by_actor=(make_actor(actor="alice@evil.example", agent="https://agent.example/a"),),
        reviews=(make_review(reviewer="bob"),),
    )
    body = render_comment(report)
    page = on_github(body)
    assert page.hrefs == [report.details_url]  # Tokentrail's own link, and nothing else
    text = reads_as(page)
    for name in (*LINKY.values(), "www.provider.example", "alice@evil.example", "https://agent.example/a"):
        assert name in text
    assert_golden("links_in_names", body)


def test_urls_in_the_title_and_branch_are_no_links_in_the_check_run() -> None:
    report = make_report(
        pr=make_pr(title="Fix http://tracker.example/p.png for www.evil.example", head_ref="mail/alice@evil.example")
    )
    page = on_github(render_check_run(report).summary)
    assert page.hrefs == [report.details_url]
    text = reads_as(page)
    assert "Fix http://tracker.example/p.png for www.evil.example" in text
    assert "mail/alice@evil.example" in text


def test_our_own_links_stay_links() -> None:
    report = make_report()
    assert on_github(render_comment(report)).hrefs == [report.details_url]
    assert re.search(r"https?://", report.details_url)
