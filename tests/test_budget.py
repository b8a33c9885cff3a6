"""Budgets: parsing `.github/tokentrail.yml`, limits with overrides, the verdict, and the number formats."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from app.budget import BudgetVerdict, Limits, conclusion_for, evaluate_budget, limits_with_overrides
from app.repo_config import RepoConfig, parse_repo_config

DESIGN_EXAMPLE = """\
budget:
  max_cost_per_pr: 25          # USD
  max_cost_per_changed_line: 0.10
  max_tokens_per_pr: 50000000
  warn_at: 0.8                 # fraction of any limit
  exempt_labels: [ai-budget-exempt]
comment:
  behavior: update             # update | new | off
  min_cost: 0.01               # no comment below this
check_run: true
"""


def make_limits(**changes: Any) -> Limits:
    return Limits(**{"max_cost_per_pr": None, "max_cost_per_changed_line": None, "max_tokens_per_pr": None} | changes)


def make_verdict(
    *,
    cost: str = "10",
    tokens: int = 1_000_000,
    changed_lines: int = 500,
    labels: Iterable[str] = (),
    limits: Limits | None = None,
    exempt_labels: Iterable[str] = ("ai-budget-exempt",),
) -> BudgetVerdict:
    return evaluate_budget(
        cost=Decimal(cost),
        tokens=tokens,
        changed_lines=changed_lines,
        labels=labels,
        limits=limits if limits is not None else make_limits(max_cost_per_pr=Decimal(25)),
        exempt_labels=exempt_labels,
    )


# --- parse_repo_config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   \n", "# nothing configured yet\n", "---\n"])
def test_absent_or_empty_file_gives_defaults_without_errors(text: str | None) -> None:
    result = parse_repo_config(text)
    assert result.errors == []
    assert result.is_valid
    assert result.config == RepoConfig()
    assert result.config.budget.warn_at == Decimal("0.8")
    assert result.config.comment.behavior == "update"
    assert result.config.comment.min_cost == Decimal("0.01")
    assert result.config.check_run is True


def test_design_example_parses_exactly() -> None:
    result = parse_repo_config(DESIGN_EXAMPLE)
    assert result.errors == []
    budget = result.config.budget
    assert budget.max_cost_per_pr == Decimal(25)
    assert budget.max_cost_per_changed_line == Decimal("0.10")
    assert budget.max_tokens_per_pr == 50_000_000
    assert budget.exempt_labels == ["ai-budget-exempt"]
    assert result.config.comment.min_cost == Decimal("0.01")


def test_unknown_key_names_its_path_line_and_a_likely_fix() -> None:
    result = parse_repo_config("budget:\n  max_cost_per_pr: 25\n\n  max_cost: 3\n")
    assert result.errors == ["budget.max_cost (line 4): unknown key (did you mean max_cost_per_pr?)"]
    assert result.config.budget.max_cost_per_pr == Decimal(25)  # the valid key still applies


def test_unknown_top_level_key() -> None:
    result = parse_repo_config("check_run: false\nbugdet:\n  max_cost_per_pr: 5\n")
    assert result.errors == ["bugdet (line 2): unknown key (did you mean budget?)"]
    assert result.config.check_run is False


def test_bad_type_names_the_value_line() -> None:
    result = parse_repo_config("comment:\n  behavior: off\nbudget:\n  max_cost_per_pr: twenty\n")
    assert result.errors == ["budget.max_cost_per_pr (line 4): Input should be a valid decimal"]
    assert result.config.budget.max_cost_per_pr is None
    assert result.config.comment.behavior == "off"  # YAML 1.1 reads a bare `off` as false: still means "off"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "budget:\n  max_cost_per_pr: -1\n",
            "budget.max_cost_per_pr (line 2): Input should be greater than or equal to 0",
        ),
        (
            "budget:\n  max_tokens_per_pr: -5\n",
            "budget.max_tokens_per_pr (line 2): Input should be greater than or equal to 0",
        ),
        ("budget:\n  warn_at: 1.5\n", "budget.warn_at (line 2): Input should be less than or equal to 1"),
        ("budget:\n  warn_at: 0\n", "budget.warn_at (line 2): Input should be greater than 0"),
        ("budget:\n  max_cost_per_pr: true\n", "budget.max_cost_per_pr (line 2): expected a number, not true/false"),
        ("budget:\n  max_cost_per_pr: .nan\n", "budget.max_cost_per_pr (line 2): Input should be a finite number"),
        ("comment:\n  min_cost: -0.01\n", "comment.min_cost (line 2): Input should be greater than or equal to 0"),
        ("comment:\n  behavior: sometimes\n", "comment.behavior (line 2): Input should be 'update', 'new' or 'off'"),
        ("budget: 25\n", "budget (line 1): expected a mapping of keys"),
        (
            "budget:\n  exempt_labels: [ok, {a: 1}]\n",
            "budget.exempt_labels[1] (line 2): Input should be a valid string",
        ),
    ],
)
def test_invalid_values_are_errors_and_fall_back_to_defaults(text: str, error: str) -> None:
    result = parse_repo_config(text)
    assert result.errors == [error]
    assert not result.is_valid
    assert result.config == RepoConfig()  # the offending key keeps its default


def test_several_errors_are_listed_in_line_order() -> None:
    result = parse_repo_config("budget:\n  warn_at: 3\n  max_cots_per_pr: 1\ncomment:\n  behavior: never\n")
    assert [error.split(":")[0] for error in result.errors] == [
        "budget.warn_at (line 2)",
        "budget.max_cots_per_pr (line 3)",
        "comment.behavior (line 5)",
    ]


def test_yaml_syntax_error_names_line_and_column() -> None:
    result = parse_repo_config("budget:\n  max_cost_per_pr: 25\n    warn_at: 0.5\n")
    assert len(result.errors) == 1
    assert result.errors[0].startswith("invalid YAML (line 3, column 12): ")
    assert result.config == RepoConfig()


def test_top_level_that_is_not_a_mapping() -> None:
    result = parse_repo_config("- budget\n- comment\n")
    expected = "top level (line 1): expected a mapping with budget, comment, check_run, dashboard, people"
    assert result.errors == [expected]


def test_empty_sections_and_a_single_label_are_accepted() -> None:
    result = parse_repo_config("budget:\n  exempt_labels: skip-budget\ncomment:\n")
    assert result.errors == []
    assert result.config.budget.exempt_labels == ["skip-budget"]


def test_a_huge_file_is_refused_before_parsing() -> None:
    result = parse_repo_config("budget:\n" + "  # padding\n" * 10_000)
    assert result.errors == ["file too large: 120,008 characters, at most 65,536"]
    assert result.config == RepoConfig()


def test_thousands_of_errors_are_located_quickly() -> None:
    result = parse_repo_config("budget:\n" + "".join(f"  unknown_{i}: 1\n" for i in range(3000)))
    assert len(result.errors) == 3000
    assert result.errors[-1] == "budget.unknown_2999 (line 3001): unknown key"


def test_non_string_keys_are_reported_not_crashed_on() -> None:
    assert parse_repo_config("1: 2\n").errors == ["1 (line 1): unknown key"]
    nested = parse_repo_config("budget:\n  max_cost_per_pr: 3\n  1: 2\n")
    assert nested.errors == ["budget.1 (line 3): unknown key"]
    assert nested.config.budget.max_cost_per_pr == Decimal(3)


def test_an_alias_shared_by_two_sections_keeps_the_valid_one() -> None:
    result = parse_repo_config("budget: &limits\n  max_cost_per_pr: 3\ncomment: *limits\n")
    assert result.errors == ["comment.max_cost_per_pr (line 2): unknown key"]
    assert result.config.budget.max_cost_per_pr == Decimal(3)


def test_duplicate_keys_report_the_one_that_applies() -> None:
    result = parse_repo_config("budget:\n  max_cost_per_pr: 1\n  max_cost_per_pr: x\n")
    assert result.errors == ["budget.max_cost_per_pr (line 3): Input should be a valid decimal"]


# --- limits_with_overrides -----------------------------------------------------------------------------------


def test_limits_come_from_the_config() -> None:
    limits = limits_with_overrides(parse_repo_config(DESIGN_EXAMPLE).config)
    assert limits == Limits(Decimal(25), Decimal("0.10"), 50_000_000, Decimal("0.8"))
    assert limits.has_any


def test_overrides_replace_only_what_they_name() -> None:
    config = parse_repo_config(DESIGN_EXAMPLE).config
    limits = limits_with_overrides(config, max_cost=Decimal(10), max_tokens=1000)
    assert limits.max_cost_per_pr == Decimal(10)
    assert limits.max_tokens_per_pr == 1000
    assert limits.max_cost_per_changed_line == Decimal("0.10")
    other = limits_with_overrides(RepoConfig(), max_cost_per_changed_line=Decimal("0.05"))
    assert other == Limits(None, Decimal("0.05"), None, Decimal("0.8"))


def test_no_limits_without_config_or_overrides() -> None:
    assert not limits_with_overrides(RepoConfig()).has_any


@pytest.mark.parametrize(
    "overrides",
    [{"max_cost": Decimal(-1)}, {"max_cost_per_changed_line": Decimal("NaN")}, {"max_tokens": -1}],
)
def test_invalid_overrides_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be non-negative"):
        limits_with_overrides(RepoConfig(), **overrides)


# --- evaluate_budget -----------------------------------------------------------------------------------------


def test_no_limits_means_none() -> None:
    verdict = make_verdict(limits=make_limits())
    assert verdict == BudgetVerdict("none", ("no budget limits set",), None)


def test_over_a_limit_fails_with_the_design_wording() -> None:
    verdict = make_verdict(cost="31.20")
    assert verdict.status == "fail"
    assert verdict.reasons == ("$31.20 exceeds max_cost_per_pr $25.00",)
    assert verdict.usage_fraction == Decimal("31.20") / 25


def test_per_line_warning_wording() -> None:
    verdict = make_verdict(
        cost="12.1", changed_lines=500, limits=make_limits(max_cost_per_changed_line=Decimal("0.029"))
    )
    assert verdict.status == "warn"
    assert verdict.reasons == ("$0.0242 per changed line is 83 % of max_cost_per_changed_line $0.029",)


def test_tokens_pass_wording() -> None:
    verdict = make_verdict(tokens=12_300_000, limits=make_limits(max_tokens_per_pr=50_000_000))
    assert verdict.status == "pass"
    assert verdict.reasons == ("12.3 M tokens within max_tokens_per_pr 50 M (25 %)",)


@pytest.mark.parametrize(
    ("cost", "status"),
    [
        ("0", "pass"),
        ("19.99", "pass"),  # just under 80 % of $25
        ("20", "warn"),  # exactly warn_at
        ("25", "warn"),  # exactly the limit is not over it
        ("25.000000001", "fail"),
    ],
)
def test_warn_at_and_limit_edges(cost: str, status: str) -> None:
    assert make_verdict(cost=cost).status == status


def test_an_exact_cost_that_rounds_to_the_limit_is_shown_unrounded() -> None:
    assert make_verdict(cost="25.004").reasons == ("$25.004 exceeds max_cost_per_pr $25.00",)


def test_custom_warn_at() -> None:
    limits = make_limits(max_cost_per_pr=Decimal(100), warn_at=Decimal("0.5"))
    assert make_verdict(cost="49.99", limits=limits).status == "pass"
    assert make_verdict(cost="50", limits=limits).status == "warn"


def test_the_worst_limit_decides_and_comes_first() -> None:
    limits = make_limits(
        max_cost_per_pr=Decimal(100), max_cost_per_changed_line=Decimal("0.01"), max_tokens_per_pr=1_200_000
    )
    verdict = make_verdict(cost="10", tokens=1_000_000, changed_lines=500, limits=limits)
    assert verdict.status == "fail"
    assert [check.name for check in verdict.checks] == [
        "max_cost_per_changed_line",
        "max_tokens_per_pr",
        "max_cost_per_pr",
    ]
    assert [check.status for check in verdict.checks] == ["fail", "warn", "pass"]
    assert verdict.reasons[0] == "$0.02 per changed line exceeds max_cost_per_changed_line $0.01"
    assert verdict.usage_fraction == Decimal(2)  # the highest fraction of any limit


def test_zero_changed_lines_skips_the_per_line_limit() -> None:
    only_per_line = make_limits(max_cost_per_changed_line=Decimal("0.01"))
    verdict = make_verdict(cost="10", changed_lines=0, limits=only_per_line)
    assert verdict.status == "none"
    assert verdict.reasons == ("max_cost_per_changed_line not applied: no changed lines",)
    assert verdict.usage_fraction is None
    both = make_limits(max_cost_per_pr=Decimal(5), max_cost_per_changed_line=Decimal("0.01"))
    verdict = make_verdict(cost="10", changed_lines=0, limits=both)
    assert verdict.status == "fail"
    assert verdict.reasons[-1] == "max_cost_per_changed_line not applied: no changed lines"


def test_a_zero_limit_forbids_any_spend() -> None:
    limits = make_limits(max_cost_per_pr=Decimal(0))
    assert make_verdict(cost="0", limits=limits).status == "pass"
    failed = make_verdict(cost="0.01", limits=limits)
    assert failed.status == "fail"
    assert failed.usage_fraction is None  # no fraction of nothing


def test_exempt_label_means_none_whatever_the_spend() -> None:
    verdict = make_verdict(cost="999", labels=("bug", "AI-Budget-Exempt"))
    assert verdict.status == "none"
    assert verdict.reasons[0] == "exempt: label AI-Budget-Exempt"
    assert "$999.00 exceeds max_cost_per_pr $25.00" in verdict.reasons  # still shown, for information
    assert make_verdict(cost="999", labels=("bug",)).status == "fail"
    assert make_verdict(cost="999", labels=("ai-budget-exempt",), exempt_labels=()).status == "fail"


@pytest.mark.parametrize(
    ("status", "conclusion"), [("pass", "success"), ("none", "success"), ("warn", "neutral"), ("fail", "failure")]
)
def test_check_run_conclusion(status: Any, conclusion: str) -> None:
    assert conclusion_for(status) == conclusion
