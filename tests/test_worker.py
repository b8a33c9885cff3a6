"""The worker in-process against the fake GitHub (real HTTP, real githubkit), on SQLite and PostgreSQL.

Webhook deliveries go in through `record_delivery`, usage through `store_usage`; `run_until_idle` runs the jobs
synchronously; the assertions read the fake's comments, check runs and calls, and the database (DESIGN §5–§7).
The fake holds GitHub's truth: in App mode every refresh re-reads the PR, its commits and reviews from it, so each
scenario changes the fake first and then sends the webhook GitHub would send.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.jobs import record_delivery
from app.main import build_worker
from app.render import MARKER
from app.store import store_usage
from tests.fake_github import FakeGitHub
from tests.worker_scene import (  # noqa: F401 - fixtures
    APP_ID,
    BRANCH,
    BUDGET_10,
    CONFIG,
    HEAD,
    INSTALLATION,
    PAYLOADS,
    REPO,
    T0,
    Scene,
    _iso,
    _payload,
    _repository,
    fake,
    headline,
    keys,
    make_pull_request_payload,
    make_push_payload,
    make_record,
    make_review_payload,
    make_settings,
    scene,
    total,
    usd,
)

# -- builders -------------------------------------------------------------------------------------------------------


# -- the scene: fake GitHub, database, worker -----------------------------------------------------------------------


# -- one sticky comment ---------------------------------------------------------------------------------------------


def test_one_comment_edited_in_place_and_left_alone_when_nothing_changed(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = make_record("before-opening", "1.25", at=T0 - timedelta(hours=2))
    scene.send_usage(before)
    scene.open_pull(12)
    quote = f"> Tokentrail said:\n> {MARKER}\n> $999.00"
    quoted_id = scene.fake.add_comment(REPO, 12, "mallory", quote)
    after = make_record("after-opening", "2.50", at=T0 + timedelta(hours=1))
    scene.send_usage(after)
    assert scene.run() > 0

    first = scene.comment()
    assert headline(before, after) in first["body"]
    assert first["performed_via_github_app"]["id"] == APP_ID
    others = [c for c in scene.fake.comments(REPO, 12) if c["id"] != first["id"]]
    assert [(c["id"], c["body"]) for c in others] == [(quoted_id, quote)]  # a quote of our marker is not ours
    assert scene.matches() == {"before-opening": (REPO, 12, "branch"), "after-opening": (REPO, 12, "branch")}
    assert scene.pull_row().comment_id == first["id"]

    more = make_record("more", "0.75", at=T0 + timedelta(hours=3))
    scene.send_usage(more)
    scene.run()
    edited = scene.comment()
    assert edited["id"] == first["id"] and headline(before, after, more) in edited["body"]
    assert len(scene.fake.calls_to("POST", f"/repos/{REPO}/issues/12/comments")) == 1
    assert len(scene.fake.calls_to("PATCH", f"/repos/{REPO}/issues/comments/{first['id']}")) == 1

    # An hour later someone labels the PR: the refresh runs, finds the same figures, and writes nothing to GitHub.
    writes = scene.writes()
    monkeypatch.setattr("app.facts.utcnow", lambda: utcnow() + timedelta(hours=1))
    scene.fake.update_pull(REPO, 12, labels=["docs"])
    scene.deliver("pull_request", make_pull_request_payload("labeled", labels=("docs",)))
    scene.run()
    assert scene.refresh_job().state == "done"
    assert scene.writes() == writes
    assert scene.comment()["body"] == edited["body"]


# -- explicit and commit rules --------------------------------------------------------------------------------------


def test_explicit_pr_number_and_pr_commit_rules(scene: Scene) -> None:
    own_commit = "c0ffee" * 6 + "beef"
    scene.open_pull(12, commits=[own_commit, HEAD])
    explicit = make_record("explicit", "3.00", branch="scratch", pr=12)
    by_commit = make_record("commit", "2.00", branch=None, commit=own_commit[:12])
    by_branch = make_record("branch", "1.00", at=T0 + timedelta(minutes=5))
    elsewhere = make_record("no-such-pr", "4.00", branch="scratch", pr=99)
    scene.send_usage(explicit, by_commit, by_branch, elsewhere)
    scene.run()

    assert scene.matches() == {
        "explicit": (REPO, 12, "explicit"),
        "commit": (REPO, 12, "commit"),
        "branch": (REPO, 12, "branch"),
        "no-such-pr": (None, None, None),
    }
    assert headline(explicit, by_commit, by_branch) in scene.comment()["body"]


# -- forks ----------------------------------------------------------------------------------------------------------


def test_fork_pull_request_matches_the_head_repository(scene: Scene) -> None:
    scene.open_pull(12, head_repo="bob/widgets")
    from_fork = make_record("fork", "2.00", repo="bob/widgets")
    same_name_upstream = make_record("upstream", "5.00", repo=REPO)
    scene.send_usage(from_fork, same_name_upstream)
    scene.run()
    assert scene.matches() == {"fork": (REPO, 12, "branch"), "upstream": (None, None, None)}
    assert scene.pull_row().head_repo == "bob/widgets"
    assert headline(from_fork) in scene.comment()["body"]


# -- force-push and a reused branch ---------------------------------------------------------------------------------


def test_stale_and_redelivered_events_move_neither_the_head_nor_the_check_run(scene: Scene) -> None:
    """DESIGN §5 in App mode: the stored state follows GitHub's `updated_at`, so the `opened` delivered again after
    a push leaves the new head, and the check run is never created on the old one."""
    new = "2" * 40
    opened = scene.open_pull(12)
    scene.run()
    pushed = T0 + timedelta(hours=1)
    scene.fake.update_pull(REPO, 12, head_sha=new, updated_at=pushed)
    scene.fake.set_pull_commits(REPO, 12, [HEAD, new])
    scene.deliver(
        "pull_request", make_pull_request_payload("synchronize", head_sha=new, updated_at=pushed, before=HEAD)
    )
    scene.deliver("pull_request", opened)  # stale, arriving last
    scene.run()
    assert scene.pull_row().head_sha == new
    check_writes = [path for method, path, _ in scene.writes() if "/check-runs" in path and method == "POST"]
    assert scene.check_run(new)["head_sha"] == new
    assert len(check_writes) == 2  # one on the opening head, one on the pushed head; none on the old one again


def test_force_push_keeps_the_commits_it_replaced(scene: Scene) -> None:
    """DESIGN §5: a PR's commits only grow; the work a force-push replaced still belongs to the PR."""
    old, new = "1" * 40, "2" * 40
    scene.open_pull(12, head_sha=old, commits=[old])
    on_old = make_record("old", "3.00", branch=None, commit=old)
    on_new = make_record("new", "1.00", branch=None, commit=new)
    scene.send_usage(on_old, on_new)
    scene.run()
    assert scene.matches() == {"old": (REPO, 12, "commit"), "new": (None, None, None)}
    assert headline(on_old) in scene.comment()["body"]

    pushed = T0 + timedelta(hours=3)
    scene.fake.update_pull(REPO, 12, head_sha=new, updated_at=pushed)
    scene.fake.set_pull_commits(REPO, 12, [new])
    scene.deliver("pull_request", make_pull_request_payload("synchronize", head_sha=new, updated_at=pushed, before=old))
    scene.run()
    assert scene.matches() == {"old": (REPO, 12, "commit"), "new": (REPO, 12, "commit")}
    body = scene.comment()["body"]
    assert headline(on_old, on_new) in body and f"for {new[:7]}" in body
    assert scene.check_run(new)["conclusion"] == "success"


def test_branch_reused_after_a_merge_starts_a_new_window(scene: Scene) -> None:
    merged_at, grace = T0 + timedelta(hours=2), timedelta(seconds=scene.worker.settings.late_usage_grace_seconds)
    second_opened = merged_at + grace + timedelta(hours=1)
    scene.open_pull(12)
    first_work = make_record("first-work", "2.00", at=T0 + timedelta(hours=1))
    scene.send_usage(first_work)
    scene.run()
    scene.close_pull(12, merged=True, at=merged_at)
    scene.run()

    late = make_record("late-in-grace", "0.50", at=merged_at + grace / 2)
    gap = make_record("after-grace", "1.25", at=merged_at + grace + timedelta(minutes=10))
    scene.send_usage(late, gap)
    scene.run()
    assert scene.matches()["after-grace"] == (None, None, None)  # no PR claims it yet

    scene.open_pull(13, head_sha="3" * 40, created_at=second_opened)
    second_work = make_record("second-work", "1.00", at=second_opened + timedelta(minutes=30))
    scene.send_usage(second_work)
    scene.run()
    assert scene.matches() == {
        "first-work": (REPO, 12, "branch"),
        "late-in-grace": (REPO, 12, "branch"),
        "after-grace": (REPO, 13, "branch"),
        "second-work": (REPO, 13, "branch"),
    }
    assert headline(first_work, late) in scene.comment(12)["body"]
    assert headline(gap, second_work) in scene.comment(13)["body"]


# -- dry-run --------------------------------------------------------------------------------------------------------


def test_dry_run_sends_nothing_and_stores_what_it_would_post(
    database_url: str, factory: sessionmaker[Session], fake: FakeGitHub
) -> None:
    worker = build_worker(make_settings(database_url, fake, None), factory)
    assert worker.publisher.github is None
    scene = Scene(fake=fake, factory=factory, worker=worker)
    scene.fake.set_file(REPO, CONFIG, BUDGET_10)  # never read: dry-run does not call GitHub
    scene.deliver("pull_request", make_pull_request_payload(number=12))
    spend = (make_record("r1", "2.00"), make_record("r2", "1.10", at=T0 + timedelta(hours=1)))
    scene.send_usage(*spend)
    assert scene.run() > 0

    assert fake.calls == []
    row = scene.pull_row()
    assert row.comment_body.startswith(MARKER) and headline(*spend) in row.comment_body
    assert row.check_conclusion == "success" and row.check_summary
    assert (row.comment_id, row.check_run_id) == (None, None)
    assert scene.matches() == {"r1": (REPO, 12, "branch"), "r2": (REPO, 12, "branch")}


# -- redelivery -----------------------------------------------------------------------------------------------------


def test_redelivered_webhooks_and_resent_usage_change_nothing(scene: Scene) -> None:
    scene.fake.set_file(REPO, CONFIG, BUDGET_10)
    opened = scene.open_pull(12, commits=["e" * 40, HEAD])
    scene.send_usage(make_record("r1", "2.00", at=T0 - timedelta(hours=1)), make_record("r2", "3.00", pr=12))
    scene.run()
    scene.review(opened, "bob", "approved", T0 + timedelta(hours=2))
    scene.send_usage(make_record("r3", "1.50", branch=None, commit="e" * 40))
    scene.run()
    body, matches, writes = scene.comment()["body"], scene.matches(), scene.writes()
    assert "AI spend on this pull request: **$6.50**" in body and "✅ approved by" in body
    assert scene.check_run()["conclusion"] == "success"

    # Redeliveries keep their delivery id; usage batches are retried whole.
    for delivery_id, event, action, payload in scene.deliveries:
        assert not record_delivery(scene.factory, delivery_id=delivery_id, event=event, action=action, body=payload)
    for batch in scene.batches:
        assert store_usage(scene.factory, records=batch, owner="acme").duplicates == len(batch)
    assert scene.run() == 0

    # The same events again under new delivery ids: the work is redone, and there is nothing to edit.
    for _, event, _, payload in list(scene.deliveries):
        scene.deliver(event, json.loads(payload))
    assert scene.run() > 0
    assert scene.refresh_job().state == "done"
    assert (scene.comment()["body"], scene.matches(), scene.writes()) == (body, matches, writes)
