"""build_report: the facts the worker gathers → the PR spend report and its JSON (DESIGN §6, §9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.budget import Limits
from app.formatting import per_line_json, usd_json
from app.pricing import cache_prices
from app.repo_config import parse_repo_config
from app.report import (
    PushInterval,
    SpendTotals,
    bucket_by_push,
    summarize_reviews,
)
from tests.support import (
    at,
    make_actor,
    make_model,
    make_point,
    make_pr,
    make_push,
    make_report,
    make_review,
    make_totals,
)


def test_no_reviews_is_pending() -> None:
    summary = summarize_reviews([], state="open")
    assert (summary.approvals, summary.changes_requested, summary.outcome) == ((), 0, "pending")


def test_approval_after_a_round_of_requested_changes() -> None:
    summary = summarize_reviews(
        [
            make_review(reviewer="bob", state="approved", submitted_at=at(5)),
            make_review(reviewer="bob", state="changes_requested", submitted_at=at(1)),
        ],
        state="open",
    )
    assert summary.approvals == ("bob",)
    assert summary.changes_requested == 1
    assert summary.requesting_changes == ()
    assert summary.outcome == "approved"


def test_a_later_comment_does_not_undo_an_approval() -> None:
    summary = summarize_reviews(
        [make_review(state="approved", submitted_at=at(1)), make_review(state="commented", submitted_at=at(2))],
        state="open",
    )
    assert summary.approvals == ("bob",)
    assert summary.latest == (("bob", "approved"),)


def test_a_comment_alone_is_no_verdict() -> None:
    summary = summarize_reviews([make_review(state="commented")], state="open")
    assert summary.latest == (("bob", "commented"),)
    assert summary.outcome == "pending"


def test_one_open_change_request_outweighs_approvals() -> None:
    summary = summarize_reviews(
        [
            make_review(reviewer="bob", state="approved", submitted_at=at(1)),
            make_review(reviewer="carol", state="changes_requested", submitted_at=at(2)),
            make_review(reviewer="carol", state="changes_requested", submitted_at=at(3)),
        ],
        state="open",
    )
    assert summary.outcome == "changes_requested"
    assert summary.requesting_changes == ("carol",)
    assert summary.approvals == ("bob",)
    assert summary.changes_requested == 2


def test_a_dismissed_approval_no_longer_counts() -> None:
    summary = summarize_reviews(
        [make_review(state="approved", submitted_at=at(1)), make_review(state="dismissed", submitted_at=at(2))],
        state="open",
    )
    assert summary.approvals == ()
    assert summary.outcome == "pending"


@pytest.mark.parametrize("state", ["merged", "closed"])
def test_a_finished_pr_outcome_is_its_state(state: Any) -> None:
    summary = summarize_reviews([make_review(state="changes_requested")], state=state)
    assert summary.outcome == state
    assert summary.changes_requested == 1


def test_report_carries_the_review_summary() -> None:
    report = make_report(pr=make_pr(state="merged"), reviews=(make_review(),))
    assert report.review.outcome == "merged"
    assert report.review.approvals == ("bob",)


# --- unmerged spend ------------------------------------------------------------------------------------------


def test_closed_without_merge_has_unmerged_spend() -> None:
    assert make_report(pr=make_pr(state="closed")).unmerged_spend == Decimal("12.48")


@pytest.mark.parametrize("state", ["open", "merged"])
def test_open_or_merged_has_no_unmerged_spend(state: Any) -> None:
    assert make_report(pr=make_pr(state=state)).unmerged_spend is None


def test_closed_without_usage_has_no_unmerged_spend() -> None:
    report = make_report(pr=make_pr(state="closed"), totals=make_totals(records=0, cost_usd=Decimal(0)))
    assert report.unmerged_spend is None


# --- cost between pushes -------------------------------------------------------------------------------------


def test_spend_belongs_to_the_push_it_led_to() -> None:
    pushes = [make_push(sha="b" * 40, pushed_at=at(4)), make_push(sha="a" * 40, pushed_at=at(2))]  # any order
    points = [
        make_point(timestamp=at(-1), cost_usd=Decimal("1"), records=1),  # before the first push
        make_point(timestamp=at(2), cost_usd=Decimal("2"), records=2),  # at the push itself
        make_point(timestamp=at(3), cost_usd=Decimal("4"), records=4),
        make_point(timestamp=at(6), cost_usd=Decimal("8"), records=8),  # after the last push
    ]
    assert bucket_by_push(points, pushes) == (
        PushInterval("a" * 40, None, at(2), Decimal("3"), 3),
        PushInterval("b" * 40, at(2), at(4), Decimal("4"), 4),
        PushInterval(None, at(4), None, Decimal("8"), 8),
    )


def test_pushes_without_spend_are_listed_and_no_empty_tail() -> None:
    intervals = bucket_by_push([make_point(timestamp=at(1))], [make_push(pushed_at=at(2)), make_push(pushed_at=at(3))])
    assert [(i.records, i.end) for i in intervals] == [(10, at(2)), (0, at(3))]


def test_no_pushes_no_timeline() -> None:
    assert bucket_by_push([make_point()], []) == ()
    assert make_report(pushes=()).timeline == ()


# --- change, ratio, cache ------------------------------------------------------------------------------------


def test_cost_per_changed_line_and_the_median_ratio() -> None:
    report = make_report()
    assert report.diff.changed_lines == 516
    assert report.cost_per_changed_line == Decimal("12.48") / 516
    assert report.median_ratio == Decimal("1.3")  # 0.02419 / 0.018


@pytest.mark.parametrize("median", [None, Decimal(0)])
def test_no_ratio_without_a_usable_median(median: Decimal | None) -> None:
    assert make_report(repo_median_cost_per_line=median).median_ratio is None


def test_zero_changed_lines_has_no_cost_per_line() -> None:
    report = make_report(pr=make_pr(additions=0, deletions=0, changed_files=1))
    assert report.cost_per_changed_line is None
    assert report.median_ratio is None
    assert report.summary_json()["cost_per_changed_line_usd"] is None


def test_cache_read_share_of_all_input() -> None:
    report = make_report(totals=make_totals(input_tokens=100, cache_read_tokens=300, cache_write_tokens=100))
    assert report.cache_read_share == Decimal("0.6")
    empty = make_totals(input_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    assert make_report(totals=empty).cache_read_share is None


def test_totals_tokens_leave_reasoning_out() -> None:
    assert make_totals().total_tokens == 1_100_000 + 5_600_000 + 200_000 + 400_000


def test_tables_are_costliest_first() -> None:
    report = make_report(
        by_model=(make_model(model="cheap", cost_usd=Decimal(1)), make_model(model="dear", cost_usd=Decimal(9))),
        by_actor=(make_actor(actor=None, cost_usd=Decimal(1)), make_actor(actor="zed", cost_usd=Decimal(2))),
    )
    assert [m.model for m in report.by_model] == ["dear", "cheap"]
    assert [a.actor for a in report.by_actor] == ["zed", None]


# --- budget and config ---------------------------------------------------------------------------------------


def test_budget_uses_cost_tokens_lines_and_exempt_labels() -> None:
    config = parse_repo_config("budget:\n  max_cost_per_pr: 10\n  exempt_labels: [big-refactor]\n")
    assert make_report(config=config, limits=Limits(max_cost_per_pr=Decimal(10))).budget.status == "fail"
    exempt = make_report(
        config=config, limits=Limits(max_cost_per_pr=Decimal(10)), pr=make_pr(labels=("big-refactor",))
    )
    assert exempt.budget.status == "none"
    tokens = make_report(limits=Limits(max_tokens_per_pr=7_000_000))
    assert tokens.budget.reasons == ("7.3 M tokens exceed max_tokens_per_pr 7 M",)  # tokens are plural
    near = make_report(limits=Limits(max_tokens_per_pr=7_500_000))
    assert near.budget.reasons == ("7.3 M tokens are 97 % of max_tokens_per_pr 7.5 M",)


@pytest.mark.parametrize(
    ("config", "totals", "wanted"),
    [
        ("", make_totals(), True),
        ("comment:\n  behavior: off\n", make_totals(), False),
        ("", make_totals(cost_usd=Decimal("0.009")), False),
        ("", make_totals(cost_usd=Decimal("0.009"), unpriced_records=3), True),
        ("comment:\n  min_cost: 20\n", make_totals(), False),
        ("", make_totals(records=0, cost_usd=Decimal(0)), False),
    ],
)
def test_is_comment_wanted(config: str, totals: SpendTotals, wanted: bool) -> None:
    assert make_report(config=parse_repo_config(config), totals=totals).is_comment_wanted is wanted


def test_details_url() -> None:
    assert make_report().details_url == "https://tokentrail.example.com/dashboard/acme/widgets/pulls/482"


# --- JSON ----------------------------------------------------------------------------------------------------


def test_summary_json_is_the_design_contract() -> None:
    summary = make_report(reviews=(make_review(),), limits=Limits(max_cost_per_pr=Decimal(25))).summary_json()
    assert list(summary) == [
        "repo", "number", "title", "author", "state", "head_ref", "head_sha", "diff", "usage",
        "cost_per_changed_line_usd", "by_model", "by_actor", "by_source", "review", "budget", "cache",
    ]  # fmt: skip
    assert summary["diff"] == {"additions": 420, "deletions": 96, "changed_files": 12, "changed_lines": 516}
    assert summary["usage"] == {
        "cost_usd": "12.48",
        "records": 1234,
        "unpriced_records": 0,
        "input_tokens": 1_100_000,
        "cache_read_tokens": 5_600_000,
        "cache_write_tokens": 200_000,
        "output_tokens": 400_000,
        "reasoning_tokens": 50_000,
    }
    assert summary["cost_per_changed_line_usd"] == "0.0242"
    assert summary["by_model"][0] == {
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "records": 1102,
        "cost_usd": "10.92",
        "input_tokens": 1_000_000,
        "output_tokens": 300_000,
    }
    assert summary["by_actor"][1] == {"actor": "bob", "agent": "codex", "records": 234, "cost_usd": "2.48"}
    assert summary["review"] == {
        "approvals": 1,
        "changes_requested": 0,
        "outcome": "approved",
        "rounds": 0,
        "spend_in_rounds_usd": "0",
    }
    assert summary["budget"] == {"status": "pass", "reasons": ["$12.48 within max_cost_per_pr $25.00 (50 %)"]}
    assert (summary["repo"], summary["number"], summary["state"]) == ("acme/widgets", 482, "open")
    day = make_report().generated_at.date()
    sonnet, gpt = cache_prices("anthropic", "claude-sonnet-4-5", day), cache_prices("openai", "gpt-5", day)
    assert sonnet is not None and gpt is not None
    saved = 5_400_000 * (sonnet[0] - sonnet[1]) + 200_000 * (gpt[0] - gpt[1])
    writes = 150_000 * sonnet[2] + 50_000 * gpt[2]
    assert summary["cache"] == {
        "cache_read_tokens": 5_600_000,
        "cache_write_tokens": 200_000,
        "cache_read_share": "0.8116",  # 5.6 M of 6.9 M input tokens
        "reads_saved_usd": usd_json(saved),
        "writes_cost_usd": usd_json(writes),
        "unpriced_models": 0,
    }


def test_summary_json_cache_is_null_money_when_no_model_is_priced() -> None:
    mystery = make_model(model="mystery-model-x", provider="acme-internal", unpriced_records=1102)
    summary = make_report(by_model=(mystery,)).summary_json()
    assert summary["cache"]["reads_saved_usd"] is None and summary["cache"]["writes_cost_usd"] is None
    assert summary["cache"]["unpriced_models"] == 1
    nothing = make_model(cache_read_tokens=0, cache_write_tokens=0)
    empty = make_report(by_model=(nothing,), totals=make_totals(cache_read_tokens=0, cache_write_tokens=0))
    assert empty.cache is None
    assert empty.summary_json()["cache"] == {
        "cache_read_tokens": 0, "cache_write_tokens": 0, "cache_read_share": "0.0000", "reads_saved_usd": "0",
        "writes_cost_usd": "0", "unpriced_models": 0,
    }  # fmt: skip


def test_summary_json_money_is_decimal_strings() -> None:
    totals = make_totals(cost_usd=Decimal("0.000225000"))
    summary = make_report(totals=totals, by_model=(make_model(cost_usd=Decimal("1E+1")),)).summary_json()
    assert summary["usage"]["cost_usd"] == "0.000225"
    assert summary["by_model"][0]["cost_usd"] == "10"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (Decimal(0), "0"),
        (Decimal("12.48") / 516, "0.0242"),
        (Decimal("0.029"), "0.029"),
        (Decimal("0.000123456"), "0.000123"),
        (Decimal("1.234567"), "1.2346"),
    ],
)
def test_per_line_json(value: Decimal | None, text: str | None) -> None:
    assert per_line_json(value) == text


def test_budget_json() -> None:
    report = make_report(limits=Limits(max_cost_per_pr=Decimal(10), max_tokens_per_pr=50_000_000))
    assert report.budget_json() == {
        "status": "fail",
        "cost_usd": "12.48",
        "reasons": ["$12.48 exceeds max_cost_per_pr $10.00", "7.3 M tokens within max_tokens_per_pr 50 M (15 %)"],
        "limits": {
            "max_cost_per_pr": "10",
            "max_cost_per_changed_line": None,
            "max_tokens_per_pr": 50_000_000,
            "warn_at": "0.8",
        },
    }
