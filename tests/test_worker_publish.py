"""The worker publishing to the fake GitHub: the "AI spend" check run against `.github/tokentrail.yml`, the comment
settings, review outcomes, retries when GitHub fails, and the guard against overwriting a newer comment (DESIGN §6,
§7). The scene, builders and fixtures are those of tests/worker_scene.py; every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from app.db import as_utc
from app.render import MARKER
from tests.worker_scene import (  # noqa: F401 - fixtures
    BUDGET_10,
    CONFIG,
    HEAD,
    REPO,
    T0,
    Scene,
    fake,
    headline,
    keys,
    make_pull_request_payload,
    make_push_payload,
    make_record,
    scene,
    total,
    usd,
)

# -- the check run and the budget -----------------------------------------------------------------------------------


def test_check_run_verdict_follows_the_budget(scene: Scene) -> None:
    scene.fake.set_file(REPO, CONFIG, BUDGET_10)
    scene.open_pull(12)
    verdicts = []
    for n, cost in enumerate(["5.00", "4.00", "3.00"]):  # $5 (50 %), $9 (90 %), $12 (over $10)
        scene.send_usage(make_record(f"r{n}", cost, at=T0 + timedelta(minutes=n)))
        scene.run()
        run = scene.check_run()
        verdicts.append(run["conclusion"])
        assert run["status"] == "completed" and scene.pull_row().check_conclusion == run["conclusion"]
    assert verdicts == ["success", "neutral", "failure"]
    assert scene.check_run()["output"]["title"].startswith("Over budget")
    assert len(scene.fake.calls_to("POST", f"/repos/{REPO}/check-runs")) == 1  # then edited in place
    assert "❌ over budget" in scene.comment()["body"]


def test_invalid_config_gives_a_check_run_naming_the_problem(scene: Scene) -> None:
    scene.fake.set_file(REPO, CONFIG, "budget:\n  max_cost: 5\n")
    scene.open_pull(12)
    scene.send_usage(make_record("r1", "2.00"))
    assert scene.run() > 0

    output = scene.check_run()["output"]
    assert output["title"].startswith(f"Invalid {CONFIG}")
    summary = output["summary"].replace("\\", "")  # the summary escapes markdown punctuation
    assert f"{CONFIG}` is invalid" in summary
    assert "budget.max_cost (line 2): unknown key (did you mean max_cost_per_pr?)" in summary
    assert "is invalid" in scene.comment()["body"]


def test_no_config_passes_and_a_push_to_the_default_branch_refreshes_the_verdict(scene: Scene) -> None:
    scene.open_pull(12)
    spend = make_record("r1", "12.00")
    scene.send_usage(spend)
    scene.run()
    assert scene.check_run()["conclusion"] == "success"
    assert "no budget set" in scene.check_run()["output"]["title"]

    # The config lands on main: nothing changes until GitHub says main moved.
    scene.fake.set_file(REPO, CONFIG, BUDGET_10)
    assert scene.run() == 0 and scene.check_run()["conclusion"] == "success"
    scene.deliver("push", make_push_payload(ref="refs/heads/main", before="b" * 40, after="c" * 40, at=T0))
    scene.run()
    assert scene.check_run()["conclusion"] == "failure"
    assert len(scene.fake.calls_to("GET", f"/repos/{REPO}/contents/{CONFIG}")) == 2
    assert len(scene.fake.calls_to("POST", f"/repos/{REPO}/check-runs")) == 1
    assert headline(spend) in scene.comment()["body"] and "❌ over budget" in scene.comment()["body"]


def test_comment_off_or_under_min_cost_posts_only_the_check_run(scene: Scene) -> None:
    scene.fake.set_file(REPO, CONFIG, "comment:\n  behavior: off\n")
    scene.open_pull(12)
    scene.fake.add_pull(REPO, 13, head_ref="feat/cheap", head_sha="d" * 40, created_at=T0)
    scene.deliver("pull_request", make_pull_request_payload(number=13, head_ref="feat/cheap", head_sha="d" * 40))
    scene.send_usage(make_record("r12", "2.00"), make_record("r13", "2.00", branch="feat/cheap"))
    scene.run()
    assert scene.bot_comments(12) == [] and scene.bot_comments(13) == []
    assert scene.check_run(HEAD)["conclusion"] == "success" and scene.check_run("d" * 40)["conclusion"] == "success"

    # min_cost instead: a PR below it gets no comment, one above it does.
    scene.fake.set_file(REPO, CONFIG, "comment:\n  min_cost: 3\n")
    scene.deliver("push", make_push_payload(ref="refs/heads/main", before="b" * 40, after="c" * 40, at=T0))
    scene.send_usage(make_record("r12-more", "1.50", at=T0 + timedelta(minutes=1)))
    scene.run()
    assert scene.bot_comments(13) == []
    assert "AI spend on this pull request: **$3.50**" in scene.comment(12)["body"]
    assert len(scene.fake.calls_to("POST", f"/repos/{REPO}/issues/")) == 1


# -- reviews and closing --------------------------------------------------------------------------------------------


def test_review_outcomes_then_merged(scene: Scene) -> None:
    opened = scene.open_pull(12)
    scene.send_usage(make_record("r1", "4.00"))
    scene.run()
    assert "⏳ awaiting review" in scene.comment()["body"]

    scene.review(opened, "carol", "changes_requested", T0 + timedelta(hours=2))
    scene.run()
    assert "🔁 changes requested by @\u200dcarol (round 1)" in scene.comment()["body"]

    scene.review(opened, "carol", "approved", T0 + timedelta(hours=4))
    scene.run()
    assert "✅ approved by @\u200dcarol after 1 round of requested changes" in scene.comment()["body"]

    scene.close_pull(12, merged=True, at=T0 + timedelta(hours=5))
    scene.run()
    body = scene.comment()["body"]
    assert "🟣 merged · approved by @\u200dcarol" in body and "not merged" not in body
    assert scene.pull_row().merged is True
    assert len(scene.bot_comments()) == 1


def test_closed_without_merge_shows_the_unmerged_spend(scene: Scene) -> None:
    scene.open_pull(12)
    spend = (make_record("r1", "4.00"), make_record("r2", "1.50", at=T0 + timedelta(hours=1)))
    scene.send_usage(*spend)
    scene.run()
    scene.close_pull(12, merged=False, at=T0 + timedelta(hours=2))
    scene.run()
    body = scene.comment()["body"]
    assert "⛔ closed without merge" in body
    assert f"💸 **{usd(total(*spend))} spent on work that was not merged.**" in body


# -- GitHub failing: retries with backoff ---------------------------------------------------------------------------


def test_failures_are_retried_with_backoff_and_end_in_one_correct_comment(scene: Scene) -> None:
    comments = f"/repos/{REPO}/issues/12/comments"
    scene.fake.fail_next("POST", comments, 502, times=2)
    scene.fake.fail_next("POST", comments, 429, retry_after=120)
    scene.fake.fail_next("POST", comments, 403, secondary_rate_limit=True)  # no Retry-After: wait a minute
    scene.open_pull(12)
    spend = make_record("r1", "6.00")
    scene.send_usage(spend)

    # Each failure puts the job back: 1 s, then 2 s of backoff, then GitHub's Retry-After, then a minute.
    expected = [("answered 502", 1), ("answered 502", 2), ("status_code=429", 120), ("secondary rate limit", 60)]
    for attempt, (error, delay) in enumerate(expected, start=1):
        if attempt > 1:
            scene.make_queued_jobs_due()
        scene.run()
        job = scene.refresh_job()
        assert (job.state, job.attempts) == ("queued", attempt) and error in job.last_error
        assert as_utc(job.run_after) - as_utc(job.updated_at) == timedelta(seconds=delay)
        assert scene.bot_comments() == [] and scene.fake.check_runs(REPO, HEAD) == []
    assert scene.run() == 0  # not due for a minute yet

    scene.make_queued_jobs_due()
    scene.run()
    job = scene.refresh_job()
    assert (job.state, job.attempts, job.last_error) == ("done", 5, None)
    assert headline(spend) in scene.comment()["body"]
    assert [c.status for c in scene.fake.calls_to("POST", comments)] == [502, 502, 429, 403, 201]
    assert scene.check_run()["conclusion"] == "success"


# -- stale guard ----------------------------------------------------------------------------------------------------


def test_a_comment_showing_a_newer_state_is_not_overwritten(scene: Scene) -> None:
    scene.open_pull(12)
    newer = f"{MARKER}\nnewer figures\n<!-- tokentrail:state head={HEAD} generated=2999-01-01T00:00:00+00:00 -->\n"
    existing = scene.fake.add_comment(REPO, 12, scene.fake.bot_login, newer, via_app=True)
    scene.send_usage(make_record("r1", "2.00"))
    scene.run()
    assert scene.comment()["id"] == existing and scene.comment()["body"] == newer
    assert scene.fake.calls_to("PATCH", f"/repos/{REPO}/issues/comments") == []
    assert scene.fake.calls_to("POST", f"/repos/{REPO}/issues/12/comments") == []
    assert scene.check_run()["conclusion"] == "success"  # the check run is still published
