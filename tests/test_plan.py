"""The publishing rules of DESIGN §6, unit-tested: the pure plan (app.plan) carried out by app.publish.apply on a
recording fake of one pull request's GitHub (tests/fake_pull.py), refresh after refresh."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.plan import Plan, Posted, plan_publish
from app.publish import apply
from app.render import MARKER, render, state_marker
from app.repo_config import parse_repo_config
from app.report import PullRequestReport
from tests.fake_pull import RecordingPull
from tests.support import T0, make_pr, make_report, make_totals

HEAD, NEW_HEAD = "a" * 40, "b" * 40


@dataclass
class Pull:
    """What a PR row would hold, kept across refreshes as the worker stores it."""

    github: RecordingPull = field(default_factory=RecordingPull)
    posted: Posted = field(default_factory=Posted)

    def refresh(self, report: PullRequestReport) -> Plan:
        rendered = render(report)
        plan = plan_publish(report, rendered, self.posted)
        if plan.stale:
            return plan
        values: dict[str, Any] = apply(plan, self.github, body=rendered.body, generated_at=report.generated_at)
        self.posted = Posted(
            comment_id=values.get("comment_id", self.posted.comment_id),
            comment_digest=rendered.digest,
            generated_at=report.generated_at,
            check_run_id=values.get("check_run_id", self.posted.check_run_id),
            check_run_sha=values.get("check_run_sha", self.posted.check_run_sha),
            check_digest=rendered.check_digest,
        )
        return plan


def report(*, cost: str = "12.48", at: datetime = T0, head: str = HEAD, config: str = "", **changes: Any) -> Any:
    return make_report(
        totals=make_totals(cost_usd=Decimal(cost)),
        generated_at=at,
        pr=make_pr(head_sha=head),
        config=parse_repo_config(config or None),
        **changes,
    )


def test_first_refresh_posts_one_comment_and_one_check_run() -> None:
    pull = Pull()
    pull.refresh(report())
    assert pull.github.writes() == ["create_comment", "create_check_run"]
    (body,) = pull.github.comments.values()
    assert body.startswith(MARKER)
    (run,) = pull.github.check_runs.values()
    assert run["head_sha"] == HEAD and run["conclusion"] == "success"


def test_a_refresh_that_changed_only_the_time_writes_nothing() -> None:
    pull = Pull()
    pull.refresh(report())
    before = len(pull.github.calls)
    plan = pull.refresh(report(at=T0 + timedelta(minutes=5)))
    assert (plan.comment, plan.check) == (None, None)
    assert len(pull.github.calls) == before


def test_new_figures_edit_the_same_comment_and_check_run() -> None:
    pull = Pull()
    pull.refresh(report())
    pull.refresh(report(cost="20.00", at=T0 + timedelta(minutes=5)))
    assert pull.github.writes() == ["create_comment", "create_check_run", "update_comment", "update_check_run"]
    assert len(pull.github.comments) == 1 and "$20.00" in next(iter(pull.github.comments.values()))


def test_a_new_head_gets_a_check_run_of_its_own() -> None:
    pull = Pull()
    pull.refresh(report())
    pull.refresh(report(at=T0 + timedelta(minutes=5), head=NEW_HEAD))
    assert sorted(run["head_sha"] for run in pull.github.check_runs.values()) == [HEAD, NEW_HEAD]


def test_comment_behavior_new_off_and_min_cost() -> None:
    new = Pull()
    new.refresh(report(config="comment:\n  behavior: new\n"))
    new.refresh(report(cost="20.00", at=T0 + timedelta(minutes=5), config="comment:\n  behavior: new\n"))
    assert len(new.github.comments) == 2
    off = Pull()
    off.refresh(report(config="comment:\n  behavior: 'off'\n"))
    assert off.github.writes() == ["create_check_run"]
    cheap = Pull()
    cheap.refresh(report(cost="0.001", config="comment:\n  min_cost: 0.01\n"))
    assert cheap.github.writes() == ["create_check_run"]


def test_a_comment_once_posted_is_kept_current_even_under_min_cost() -> None:
    pull = Pull()
    pull.refresh(report(cost="5.00", config="comment:\n  min_cost: 1\n"))
    pull.refresh(report(cost="0.50", at=T0 + timedelta(minutes=5), config="comment:\n  min_cost: 1\n"))
    assert "update_comment" in pull.github.writes()


def test_a_deleted_comment_is_found_again_or_recreated() -> None:
    pull = Pull()
    pull.refresh(report())
    pull.github.comments.clear()  # someone deleted it
    pull.refresh(report(cost="20.00", at=T0 + timedelta(minutes=5)))
    assert [v for v in pull.github.writes() if "comment" in v] == ["create_comment", "update_comment", "create_comment"]
    assert len(pull.github.comments) == 1


def test_a_comment_showing_a_newer_state_is_never_overwritten() -> None:
    pull = Pull()
    newer = report(cost="30.00", at=T0 + timedelta(hours=1))
    comment_id = pull.github.create_comment(f"{MARKER}\nnewer\n{state_marker(newer)}\n")
    pull.refresh(report(at=T0))  # an older job arrives with no comment id of its own
    assert pull.github.comments[comment_id].endswith(f"{state_marker(newer)}\n")
    assert pull.posted.comment_id == comment_id


def test_someone_elses_comment_with_our_marker_is_left_alone() -> None:
    pull = Pull()
    pull.github.comments[1] = f"quoting the bot: {MARKER}"
    pull.refresh(report())
    assert pull.github.comments[1] == f"quoting the bot: {MARKER}"
    assert len(pull.github.ours) == 1


def test_a_stale_job_writes_nothing() -> None:
    pull = Pull()
    pull.refresh(report(at=T0 + timedelta(hours=1)))
    before = list(pull.github.calls)
    assert pull.refresh(report(cost="1.00", at=T0)).stale
    assert pull.github.calls == before


def test_no_check_run_when_the_config_says_so_or_without_a_head() -> None:
    off = Pull()
    off.refresh(report(config="check_run: false\n"))
    assert "create_check_run" not in off.github.writes()
    headless = Pull()
    headless.refresh(replace(report(), pr=make_pr(head_sha="")))
    assert "create_check_run" not in headless.github.writes()
