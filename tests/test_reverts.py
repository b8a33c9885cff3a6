"""Reverted work (issue 15): both signals, through webhooks, the worker and the fake GitHub, on SQLite and
PostgreSQL; and the pure revert graph (`app.outcomes`), including reverts of reverts and cycles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.facts import gather_facts
from app.report import build_report
from tests.fake_github_bodies import fake_sha
from tests.worker_scene import (  # noqa: F401 - fixtures
    REPO,
    T0,
    Scene,
    fake,
    keys,
    make_pull_request_payload,
    make_push_payload,
    make_record,
    scene,
)

# -- through webhooks, the worker and the fake GitHub ----------------------------------------------------------------


def merge_sha(number: int) -> str:
    return fake_sha(f"merge:{REPO}#{number}")  # what the fake GitHub answers for a merged PR


def open_and_merge(scene: Scene, number: int, *, branch: str, body: str, merged_at: datetime, cost: str) -> None:
    head = fake_sha(f"head-{number}")
    scene.fake.add_pull(
        REPO, number, title=f"Change #{number}", user="alice", head_ref=branch, head_sha=head, body=body,
        additions=100, deletions=20, changed_files=3, created_at=merged_at - timedelta(hours=5),
    )  # fmt: skip
    scene.fake.set_pull_commits(REPO, number, [head])
    opened = make_pull_request_payload(
        number=number, head_ref=branch, head_sha=head, created_at=merged_at - timedelta(hours=5), additions=100,
        deletions=20, changed_files=3,
    )  # fmt: skip
    opened["pull_request"]["body"] = body
    scene.deliver("pull_request", opened)
    scene.send_usage(make_record(f"r{number}", cost, at=merged_at - timedelta(hours=1), branch=branch))
    scene.run()
    scene.fake.update_pull(REPO, number, state="closed", merged=True, closed_at=merged_at, merged_at=merged_at)
    closed = make_pull_request_payload(
        "closed", number=number, head_ref=branch, head_sha=head, created_at=merged_at - timedelta(hours=5),
        closed_at=merged_at, merged=True, additions=100, deletions=20, changed_files=3,
    )  # fmt: skip
    closed["pull_request"].update(body=body, merge_commit_sha=merge_sha(number))
    scene.deliver("pull_request", closed)
    scene.run()


def summary(scene: Scene, number: int) -> dict[str, Any]:
    with scene.factory() as session:
        return build_report(gather_facts(session, repo=REPO, number=number, public_url="http://t")).summary_json()


def test_revert_pr_reverts_and_a_revert_of_it_restores(scene: Scene) -> None:
    open_and_merge(scene, 12, branch="feat/a", body="Adds a cache", merged_at=T0 + timedelta(days=1), cost="3.00")
    assert summary(scene, 12)["review"]["outcome"] == "merged"
    assert "reverted" not in scene.comment(12)["body"]

    open_and_merge(
        scene, 13, branch="revert-12-feat/a", body="Reverts acme/widgets#12", merged_at=T0 + timedelta(days=2),
        cost="0.50",
    )  # fmt: skip
    reverted = summary(scene, 12)
    assert reverted["review"]["outcome"] == "reverted"
    assert reverted["review"]["reverted_by"] == {
        "pull_request": 13,
        "commit": None,
        "at": (T0 + timedelta(days=2)).isoformat(),
    }
    assert "**$3.00 spent on work that was reverted** (by #13" in scene.comment(12)["body"]
    assert "⏪ merged, then reverted" in scene.comment(12)["body"]
    assert "This pull request reverts #12 (Change \\#12), which cost $3.00." in scene.comment(13)["body"]
    assert summary(scene, 13)["review"]["reverts"] == {"pull_request": 12, "cost_usd": "3"}

    open_and_merge(
        scene, 14, branch="revert-13", body="Reverts acme/widgets#13", merged_at=T0 + timedelta(days=3), cost="0.25"
    )
    assert summary(scene, 12)["review"]["outcome"] == "merged"  # the work stands again
    assert "spent on work that was reverted" not in scene.comment(12)["body"]
    assert summary(scene, 13)["review"]["outcome"] == "reverted"
    assert "**$0.50 spent on work that was reverted** (by #14" in scene.comment(13)["body"]


def push_to_main(scene: Scene, *, sha: str, message: str, when: datetime) -> None:
    payload = make_push_payload(ref="refs/heads/main", before="0" * 40, after=sha, at=when)
    payload["commits"][0]["message"] = message
    payload["head_commit"]["message"] = message
    scene.deliver("push", payload)
    scene.run()


def test_revert_commit_pushed_to_the_default_branch(scene: Scene) -> None:
    open_and_merge(scene, 12, branch="feat/a", body="", merged_at=T0 + timedelta(days=1), cost="3.00")
    revert = "cd" * 20
    push_to_main(
        scene, sha=revert, message=f'Revert "x"\n\nThis reverts commit {merge_sha(12)}.', when=T0 + timedelta(days=2)
    )
    reverted = summary(scene, 12)["review"]
    assert reverted["outcome"] == "reverted"
    assert reverted["reverted_by"]["commit"] == revert
    assert f"**$3.00 spent on work that was reverted** (by commit {revert[:7]}" in scene.comment(12)["body"]

    # a branch push does not count, and the same delivery twice changes nothing
    push_to_main(scene, sha=revert, message=f"This reverts commit {merge_sha(12)}.", when=T0 + timedelta(days=2))
    push_to_main(scene, sha="ef" * 20, message=f"This reverts commit {revert}.", when=T0 + timedelta(days=3))
    assert summary(scene, 12)["review"]["outcome"] == "merged"
    assert "spent on work that was reverted" not in scene.comment(12)["body"]


def test_a_push_to_another_branch_reverts_nothing(scene: Scene) -> None:
    open_and_merge(scene, 12, branch="feat/a", body="", merged_at=T0 + timedelta(days=1), cost="3.00")
    payload = make_push_payload(ref="refs/heads/feat/b", before="0" * 40, after="cd" * 20, at=T0 + timedelta(days=2))
    payload["commits"][0]["message"] = f"This reverts commit {merge_sha(12)}."
    scene.deliver("push", payload)
    scene.run()
    assert summary(scene, 12)["review"]["outcome"] == "merged"
