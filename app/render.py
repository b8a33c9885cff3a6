"""Rendering a `PullRequestReport` as the sticky PR comment and the check run (DESIGN §6), via `templates/`.

Pure. All markdown lives in the templates; this module supplies the filters, escapes every user-supplied string
(titles, logins, models, branches, labels), and keeps the output under GitHub's size limits by dropping table
rows, never by cutting the text (except as a last resort), so the markers always survive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeAlias, TypeVar

import jinja2

from app.budget import Conclusion, conclusion_for
from app.formatting import as_utc, format_pct, format_usd, pluralize, register_filters
from app.repo_config import CONFIG_PATH
from app.report import PullRequestReport

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MARKER = "<!-- tokentrail:pr-comment -->"
MAX_COMMENT_CHARS = 65_536  # GitHub rejects a comment body of this many characters or more
MAX_SUMMARY_CHARS = 65_535  # a check run's output.summary
MAX_TEXT = 120  # a user string longer than this is shortened: no title or model name may crowd out the report
_STATE = re.compile(r"<!-- tokentrail:state head=(\S*) generated=(\S+) -->")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")
# Where GitHub would turn user text into a link: a scheme it auto-links before "://", or "www" before ".".
# (E-mail addresses are already broken by the joiner after every "@".)
_AUTOLINK = re.compile(r"(?i)(?:https?|ftp)(?=://)|www(?=\.)")
T = TypeVar("T")


class RenderError(Exception):
    """A template produced output without the marker the comment is found by: posting it would duplicate it."""


@dataclass(frozen=True, slots=True)
class CheckRunOutput:
    title: str
    summary: str
    conclusion: Conclusion


@dataclass(frozen=True, slots=True)
class Table(Generic[T]):
    """The rows shown of one table; the rest are summed into one "N more" row (the column totals still add up)."""

    rows: tuple[T, ...]
    hidden: int = 0
    hidden_records: int = 0
    hidden_cost: Decimal = Decimal(0)


def escape_md(text: str | None, limit: int = MAX_TEXT) -> str:
    """Plain text for a markdown table cell: one line, punctuation escaped, and no @-mention that would ping nor
    bare URL or e-mail address that GitHub would turn into a link. An invisible zero-width joiner breaks each of
    those, so the text still reads the same to a person."""
    if text is None:
        return "—"
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _AUTOLINK.sub(lambda found: found.group(0) + "\u200d", text)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u200d")


def _login(login: str | None) -> str:
    return "—" if login is None else escape_md("@" + login)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # markdown, not HTML: user strings go through the `md` filter instead
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    register_filters(env, text=escape_md)
    env.filters.update(md=escape_md, login=_login)
    return env


def _cap(rows: tuple[T, ...], cap: int | None, *, keep_last: bool = False) -> Table[T]:
    if cap is None or len(rows) <= cap:
        return Table(rows)
    shown = rows[len(rows) - cap :] if keep_last else rows[:cap]
    hidden = rows[: len(rows) - cap] if keep_last else rows[cap:]
    return Table(
        shown,
        hidden=len(hidden),
        hidden_records=sum(getattr(row, "records", 0) for row in hidden),
        hidden_cost=sum((getattr(row, "cost_usd", Decimal(0)) for row in hidden), Decimal(0)),
    )


def _tables(report: PullRequestReport, cap: int | None) -> dict[str, Table[Any]]:
    # Models and actors are costliest first, so the cheapest rows go; of the timeline the latest pushes stay.
    return {
        "models": _cap(report.by_model, cap),
        "actors": _cap(report.by_actor, cap),
        "pushes": _cap(report.timeline, cap, keep_last=True),
    }


def _size(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # GitHub counts UTF-16 units: an emoji can count twice


def state_marker(report: PullRequestReport) -> str:
    head = re.sub(r"[^0-9A-Za-z]", "", report.pr.head_sha)
    return f"<!-- tokentrail:state head={head} generated={as_utc(report.generated_at).isoformat()} -->"


def parse_comment_state(body: str) -> tuple[str, datetime] | None:
    """(head sha, generated at) from a comment we rendered, so that an older job never overwrites a newer one."""
    found = _STATE.findall(body)
    if not found:
        return None
    head, generated = found[-1]
    try:
        return head, as_utc(datetime.fromisoformat(generated))
    except ValueError:
        return None


Renderer: TypeAlias = Callable[[PullRequestReport, dict[str, Table[Any]]], str]


def _fit(render: Renderer, report: PullRequestReport, limit: int) -> str:
    """Render with every table whole; when too long, cap the rows per table at the largest count that fits,
    which shortens the longest table first. Binary search: a 5,000-row table takes ~13 renders, not 5,000."""
    text = render(report, _tables(report, None))
    if _size(text) < limit:
        return text
    longest = max(len(report.by_model), len(report.by_actor), len(report.timeline))
    low, high = 0, longest - 1  # the largest cap in [low, high] that fits; low=0 may not fit either
    while low < high:
        middle = (low + high + 1) // 2
        if _size(render(report, _tables(report, middle))) < limit:
            low = middle
        else:
            high = middle - 1
    text = render(report, _tables(report, low))
    if _size(text) < limit:
        return text
    # Last resort, for a report whose text outside the tables is itself too long: cut, keep the state marker.
    tail = f"\n\n**(truncated)**\n{state_marker(report)}\n"
    while _size(text) + _size(tail) >= limit:
        text = text[: len(text) - (_size(text) + _size(tail) - limit) - 1]
    return text + tail


def _render_comment_text(report: PullRequestReport, tables: dict[str, Table[Any]]) -> str:
    hidden = sum(table.hidden for table in tables.values())
    return (
        _environment()
        .get_template("pr_comment.md.j2")
        .render(r=report, t=tables, hidden=hidden, marker=MARKER, state=state_marker(report), config_path=CONFIG_PATH)
    )


def render_comment(report: PullRequestReport) -> str:
    """The sticky PR comment: starts with MARKER, ends with the state marker, under 65,536 characters."""
    body = _fit(_render_comment_text, report, MAX_COMMENT_CHARS)
    if not body.startswith(MARKER) or parse_comment_state(body) is None:
        raise RenderError("pr_comment.md.j2 lost a marker")
    return body


def _check_title(report: PullRequestReport) -> str:
    verdict, totals = report.budget, report.totals
    spent = format_usd(totals.cost_usd)
    if totals.unpriced_records:
        spent += f" (+{pluralize(totals.unpriced_records, 'unpriced call')})"
    if verdict.status == "fail":
        title = f"Over budget: {verdict.reasons[0]}"
    elif verdict.status in ("pass", "warn") and verdict.usage_fraction is not None:
        title = f"{spent} · {format_pct(verdict.usage_fraction)} of budget"
    elif verdict.status in ("pass", "warn"):
        title = f"{spent} · within budget"
    elif verdict.reasons[0].startswith("exempt"):
        title = f"{spent} · {verdict.reasons[0]}"
    else:
        title = f"{spent} · no budget set" if not report.limits.has_any else f"{spent} · no budget limit applies"
    if not report.config.is_valid:
        title = f"Invalid {CONFIG_PATH} · {title}"
    return title if len(title) <= 200 else title[:199] + "…"


def _render_check_text(report: PullRequestReport, tables: dict[str, Table[Any]]) -> str:
    del tables  # the summary shows no per-row tables; the signature matches `_fit`
    return _environment().get_template("check_run.md.j2").render(r=report, config_path=CONFIG_PATH)


def render_check_run(report: PullRequestReport) -> CheckRunOutput:
    """The "AI spend" check run: its conclusion follows the budget; an invalid config is named first."""
    summary = _fit(_render_check_text, report, MAX_SUMMARY_CHARS + 1)
    return CheckRunOutput(_check_title(report), summary, conclusion_for(report.budget.status))


# The parts of a rendering that only say when it was made: left out of its digest, so that a refresh that changed
# no figure edits nothing on GitHub.
_MOMENTS = re.compile(r"updated \d{4}-\d\d-\d\d \d\d:\d\d UTC|generated=\S+")


def digest_of(*texts: str) -> str:
    """Equal digests: the same texts but for when they were generated."""
    return hashlib.sha256("\x00".join(_MOMENTS.sub("", text) for text in texts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A report rendered once per refresh: the comment, the check run, and their timeless digests."""

    body: str
    digest: str
    check: CheckRunOutput
    check_digest: str


def check_digest(check: CheckRunOutput) -> str:
    return digest_of(check.title, check.conclusion, check.summary)


def render(report: PullRequestReport) -> Rendered:
    body = render_comment(report)
    check = render_check_run(report)
    return Rendered(body=body, digest=digest_of(body), check=check, check_digest=check_digest(check))
