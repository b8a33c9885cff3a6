"""The PR comment and the check run: golden files, markers, escaping, the size limit, conclusions.

Golden files live in tests/golden/. After an intended change of layout, regenerate them with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render.py` and review the diff.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.budget import Limits, limits_with_overrides
from app.render import (
    MARKER,
    MAX_COMMENT_CHARS,
    MAX_SUMMARY_CHARS,
    _fit,
    escape_md,
    parse_comment_state,
    render_check_run,
    render_comment,
)
from app.repo_config import parse_repo_config
from app.report import PullRequestReport
from tests.golden import assert_golden
from tests.support import (
    T0,
    make_actor,
    make_model,
    make_point,
    make_pr,
    make_push,
    make_report,
    make_review,
    make_totals,
)

CONFIG = "budget:\n  max_cost_per_pr: 15\n  max_cost_per_changed_line: 0.10\n  exempt_labels: [ai-budget-exempt]\n"
HOSTILE = "evil | <script>alert(1)</script> `x` *y* _z_ [l](u) @everyone"


def make_configured_report(text: str = CONFIG, **changes: Any) -> PullRequestReport:
    config = parse_repo_config(text)
    return make_report(config=config, limits=limits_with_overrides(config.config), **changes)


def merged_report() -> PullRequestReport:
    return make_configured_report(
        pr=make_pr(state="merged", closed_at=T0 + timedelta(hours=6), merged_at=T0 + timedelta(hours=6)),
        reviews=(
            make_review(reviewer="bob", state="changes_requested", submitted_at=T0 + timedelta(hours=3)),
            make_review(reviewer="bob", state="approved", submitted_at=T0 + timedelta(hours=5)),
        ),
        spend_points=(
            make_point(timestamp=T0, cost_usd=Decimal("4.00"), records=400),
            make_point(timestamp=T0 + timedelta(hours=3), cost_usd=Decimal("8.00"), records=800),
            make_point(timestamp=T0 + timedelta(hours=5), cost_usd=Decimal("0.48"), records=34),
        ),
    )


# --- golden files --------------------------------------------------------------------------------------------


def test_golden_merged_pr() -> None:
    assert_golden("merged", render_comment(merged_report()))


def test_golden_closed_without_merge() -> None:
    report = make_configured_report(
        pr=make_pr(state="closed", closed_at=T0 + timedelta(hours=8)),
        reviews=(make_review(reviewer="carol", state="changes_requested"),),
        totals=make_totals(cost_usd=Decimal("31.20")),
    )
    body = render_comment(report)
    assert "💸 **$31.20 spent on work that was not merged.**" in body
    assert_golden("closed_unmerged", body)


def test_golden_no_usage() -> None:
    report = make_configured_report(
        totals=make_totals(
            records=0, cost_usd=Decimal(0), input_tokens=0, cache_read_tokens=0, cache_write_tokens=0,
            output_tokens=0, reasoning_tokens=0, sessions=0, agents=0,
        ),
        by_model=(), by_actor=(), spend_points=(),
    )  # fmt: skip
    body = render_comment(report)
    assert "No model usage has been linked to this pull request yet." in body
    assert "<details>" not in body
    assert_golden("no_usage", body)


def test_golden_unpriced_calls() -> None:
    report = make_configured_report(
        totals=make_totals(unpriced_records=2),
        by_model=(make_model(), make_model(model="acme-internal-1", provider="acme", records=2, unpriced_records=2,
                                           cost_usd=Decimal(0), input_tokens=20_000, cache_read_tokens=0,
                                           cache_write_tokens=0, output_tokens=1_500)),
    )  # fmt: skip
    body = render_comment(report)
    assert "2 calls with unknown prices are not included" in body
    assert "| acme-internal-1 | acme | 2 (2 unpriced) |" in body
    assert body.count("| unknown |") == 1  # not "$0.00": an unknown price is no price
    assert_golden("unpriced", body)


def test_golden_check_run_with_invalid_config() -> None:
    report = make_configured_report(CONFIG + "  max_cost: 3\ncomment:\n  behavior: sometimes\n")
    assert_golden("check_run_invalid_config", render_check_run(report).summary)


# --- markers -------------------------------------------------------------------------------------------------


def test_comment_starts_with_the_marker_and_ends_with_the_state() -> None:
    body = render_comment(merged_report())
    assert body.startswith(MARKER + "\n")
    assert body.count(MARKER) == 1
    assert body.rstrip().endswith(
        "<!-- tokentrail:state head=3f2c9a1d0e5b6c7a8f9e0d1c2b3a4f5e6d7c8b9a generated=2025-03-04T14:02:00+00:00 -->"
    )


def test_state_round_trips() -> None:
    generated = datetime(2025, 5, 1, 12, 30, 15, tzinfo=UTC)
    body = render_comment(make_report(generated_at=generated, pr=make_pr(head_sha="abc1234")))
    assert parse_comment_state(body) == ("abc1234", generated)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "Looks good to me",
        MARKER,
        "<!-- tokentrail:state head=abc generated=yesterday -->",
    ],
)
def test_no_state_in_other_bodies(body: str) -> None:
    assert parse_comment_state(body) is None


def test_state_is_kept_in_utc() -> None:
    from datetime import timezone

    local = datetime(2025, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    state = parse_comment_state(render_comment(make_report(generated_at=local)))
    assert state is not None
    assert state[1] == datetime(2025, 5, 1, 12, 30, tzinfo=UTC)
    assert state[1].tzinfo == UTC


# --- escaping ------------------------------------------------------------------------------------------------


def test_escape_md() -> None:
    assert escape_md("a|b <i> `c` *d* _e_ [f] \\ @bob") == (
        "a\\|b \\<i\\> \\`c\\` \\*d\\* \\_e\\_ \\[f\\] \\\\ @\u200dbob"
    )
    assert escape_md("two\nlines\r\n  here") == "two lines here"
    assert escape_md(None) == "—"
    assert escape_md("x" * 500) == "x" * 119 + "…"


def test_hostile_strings_cannot_break_the_comment() -> None:
    report = make_report(
        by_model=(make_model(model=HOSTILE, provider="p|q"),),
        by_actor=(make_actor(actor=HOSTILE, agent="@here"),),
        reviews=(make_review(reviewer="everyone"),),
    )
    body = render_comment(report)
    assert "<script>" not in body
    assert "@everyone" not in body and "@here" not in body  # a zero-width joiner follows every @
    assert "approved by @\u200deveryone" in body
    model_row = next(line for line in body.splitlines() if "evil" in line and "claude-code" not in line)
    assert model_row.replace("\\|", "").count("|") == 9  # 8 cells: the title's pipe did not add one
    assert "\\<script\\>" in model_row


def test_hostile_title_and_branch_in_the_check_run() -> None:
    report = make_report(pr=make_pr(title=HOSTILE, head_ref="feat/`x`|y", labels=("@everyone",)))
    summary = render_check_run(report).summary
    assert "<script>" not in summary
    assert "@everyone" not in summary
    assert "**#482 evil \\| \\<script\\>alert(1)\\</script\\> \\`x\\` \\*y\\*" in summary
    assert "feat/\\`x\\`\\|y" in summary


def test_an_exempt_label_is_escaped_in_the_comment() -> None:
    report = make_configured_report(
        "budget:\n  max_cost_per_pr: 1\n  exempt_labels: ['@team|x']\n", pr=make_pr(labels=("@team|x",))
    )
    assert "exempt: label @\u200dteam\\|x" in render_comment(report)


# --- size ----------------------------------------------------------------------------------------------------


def test_a_huge_report_is_truncated_under_the_limit() -> None:
    models = tuple(make_model(model=f"model-{i:04d}", cost_usd=Decimal(i) / 100, records=1) for i in range(5000))
    actors = tuple(make_actor(actor=f"dev-{i:04d}", cost_usd=Decimal(i) / 100, records=1) for i in range(5000))
    body = render_comment(make_report(by_model=models, by_actor=actors))
    assert len(body) < MAX_COMMENT_CHARS
    assert len(body.encode("utf-16-le")) // 2 < MAX_COMMENT_CHARS
    assert "### 🧾 AI spend on this pull request: **$12.48**" in body  # totals stay
    assert "| model-4999 |" in body and "| model-0000 |" not in body  # the cheapest rows go first
    assert "| dev-4999 |" in body and "| dev-0000 |" not in body
    assert "(truncated: " in body
    hidden = int(body.split("*… ")[1].split(" more models*")[0].replace(",", ""))
    shown = body.count("| model-")
    assert hidden + shown == 5000
    assert f"(truncated: {hidden:,} rows not shown)" in body
    assert parse_comment_state(body) is not None and body.startswith(MARKER)


def test_a_long_timeline_keeps_the_latest_pushes() -> None:
    pushes = tuple(make_push(sha=f"{i:07x}" + "0" * 33, pushed_at=T0 + timedelta(minutes=i)) for i in range(6000))
    body = render_comment(make_report(pushes=pushes))
    assert len(body) < MAX_COMMENT_CHARS
    assert "| 000176f |" in body  # the last push (5999)
    assert "| 0000000 |" not in body
    assert "earlier pushes*" in body


def test_a_report_small_enough_is_not_truncated() -> None:
    assert "truncated" not in render_comment(merged_report())


def test_last_resort_cut_keeps_the_state_marker() -> None:
    report = make_report()
    text = _fit(lambda _report, _tables: MARKER + "\n" + "x" * 70_000, report, MAX_COMMENT_CHARS)
    assert len(text) < MAX_COMMENT_CHARS
    assert text.startswith(MARKER)
    assert "**(truncated)**" in text
    assert parse_comment_state(text) is not None


# --- the check run -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "labels", "title", "conclusion"),
    [
        (Limits(), (), "$12.48 · no budget set", "success"),
        (Limits(max_cost_per_pr=Decimal(100)), (), "$12.48 · 12 % of budget", "success"),
        (Limits(max_cost_per_pr=Decimal(15)), (), "$12.48 · 83 % of budget", "neutral"),
        (Limits(max_cost_per_pr=Decimal(10)), (), "Over budget: $12.48 exceeds max_cost_per_pr $10.00", "failure"),
        (
            Limits(max_cost_per_pr=Decimal(10)),
            ("ai-budget-exempt",),
            "$12.48 · exempt: label ai-budget-exempt",
            "success",
        ),
        (Limits(max_cost_per_pr=Decimal(0)), (), "Over budget: $12.48 exceeds max_cost_per_pr $0.00", "failure"),
    ],
)
def test_check_run_title_and_conclusion(limits: Limits, labels: tuple[str, ...], title: str, conclusion: str) -> None:
    config = parse_repo_config("budget:\n  exempt_labels: [ai-budget-exempt]\n")
    output = render_check_run(make_report(limits=limits, config=config, pr=make_pr(labels=labels)))
    assert (output.title, output.conclusion) == (title, conclusion)


def test_check_run_when_no_limit_applies() -> None:
    report = make_report(limits=Limits(max_cost_per_changed_line=Decimal("0.1")), pr=make_pr(additions=0, deletions=0))
    output = render_check_run(report)
    assert output.title == "$12.48 · no budget limit applies"
    assert "max\\_cost\\_per\\_changed\\_line not applied: no changed lines" in output.summary


def test_check_run_title_counts_unpriced_calls() -> None:
    output = render_check_run(make_report(totals=make_totals(unpriced_records=3)))
    assert output.title == "$12.48 (+3 unpriced calls) · no budget set"


def test_invalid_config_is_named_first_and_the_budget_still_decides() -> None:
    report = make_configured_report("budget:\n  max_cost_per_pr: 10\n  max_cots: 3\n")
    output = render_check_run(report)
    assert output.title == "Invalid .github/tokentrail.yml · Over budget: $12.48 exceeds max_cost_per_pr $10.00"
    assert output.conclusion == "failure"
    assert output.summary.startswith("> [!WARNING]\n> **`.github/tokentrail.yml` is invalid** (1 error).")
    assert "> - budget.max\\_cots (line 3): unknown key" in output.summary
    assert "is invalid (1 error, see the check run)" in render_comment(report)


def test_thousands_of_config_errors_stay_under_the_summary_limit() -> None:
    text = "budget:\n" + "".join(f"  unknown_{i}: 1\n" for i in range(2000))
    output = render_check_run(make_configured_report(text))
    assert len(output.summary) <= MAX_SUMMARY_CHARS
    assert "> - … and 1950 more" in output.summary
    assert output.title.startswith("Invalid .github/tokentrail.yml")


def test_check_run_lists_the_limits() -> None:
    summary = render_check_run(make_configured_report()).summary
    assert "| max_cost_per_pr | $15.00 |" in summary
    assert "| max_cost_per_changed_line | $0.10 |" in summary
    assert "| max_tokens_per_pr | — |" in summary
    assert "| warn_at | 80 % |" in summary


# --- architecture --------------------------------------------------------------------------------------------


def test_budget_report_render_import_no_framework() -> None:
    code = (
        "import sys, app.budget, app.report, app.render\n"
        "print(','.join(m for m in ('fastapi', 'starlette', 'sqlmodel', 'sqlalchemy', 'githubkit', 'httpx')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# --- the spend after the last push -------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "label", "other"), [
    ("open", "not pushed yet", "after the last push"),
    ("merged", "after the last push", "not pushed yet"),
    ("closed", "after the last push", "not pushed yet"),
])  # fmt: skip
def test_the_tail_after_the_last_push_is_named_for_the_pr_state(state: Any, label: str, other: str) -> None:
    """On an open PR the spend after the last push is work still to be pushed; on a merged or closed one it never
    will be, so it is the spend "after the last push"."""
    report = make_report(
        pr=make_pr(state=state),
        pushes=(make_push(pushed_at=T0 + timedelta(hours=1)),),
        spend_points=(make_point(timestamp=T0 + timedelta(hours=2)),),
    )
    assert report.timeline[-1].sha is None
    body = render_comment(report)
    assert f"*{label}*" in body and other not in body


def test_the_cache_line_is_left_out_when_no_model_with_cache_tokens_is_priced() -> None:
    mystery = make_model(model="mystery-model-x", provider="acme-internal", unpriced_records=1102)
    body = render_comment(make_configured_report(by_model=(mystery,)))
    assert "| mystery-model-x |" in body and "Cache:" not in body  # not "$0.00 saved … left out"
    priced = render_comment(make_configured_report(by_model=(make_model(), mystery)))
    assert "Cache: reads saved $14.58" in priced and "(1 model without a known price left out)" in priced
