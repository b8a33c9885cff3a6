"""Reverted work (issue 15): both signals, through webhooks, the worker and the fake GitHub, on SQLite and
PostgreSQL; and the pure revert graph (`app.outcomes`), including reverts of reverts and cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.facts import gather_facts
from app.outcomes import (
    PullChange,
    RevertCommitSignal,
    RevertedBy,
    revert_states,
    reverted_pull_number,
    reverted_shas,
)
from app.report import build_report
from tests import test_worker
from tests.fake_github_bodies import fake_sha
from tests.test_worker import REPO, T0, Scene, make_pull_request_payload, make_push_payload, make_record

fake, keys, scene = test_worker.fake, test_worker.keys, test_worker.scene  # the fixtures, made available here

# -- the pure graph ------------------------------------------------------------------------------------------------


def at(day: int) -> datetime:
    return datetime(2025, 3, day, 12, tzinfo=UTC)


def pull(number: int, *, merged: bool = True, day: int = 1, shas: tuple[str, ...] = (), reverts: int | None = None):
    return PullChange(number, merged, at(day) if merged else None, frozenset(shas), reverts)


def test_revert_link_in_a_body_names_the_same_repository_only() -> None:
    assert reverted_pull_number("Reverts acme/widgets#12\n\nbecause", repo="acme/widgets") == 12
    assert reverted_pull_number("reverts ACME/Widgets#7", repo="acme/widgets") == 7
    assert reverted_pull_number("Reverts other/repo#12", repo="acme/widgets") is None
    assert reverted_pull_number("This PR reverts acme/widgets#12 in passing", repo="acme/widgets") is None
    assert reverted_pull_number(None, repo="acme/widgets") is None


def test_revert_commit_messages() -> None:
    sha = "ab" * 20
    assert reverted_shas(f'Revert "x"\n\nThis reverts commit {sha}.') == (sha,)
    assert reverted_shas(f"This reverts commit {sha.upper()[:12]}.") == (sha[:12],)
    assert reverted_shas("This reverts nothing") == ()


def test_a_merged_revert_pr_reverts_and_an_unmerged_one_does_not() -> None:
    states = revert_states([pull(12), pull(13, day=2, reverts=12), pull(14, merged=False, reverts=12)], [])
    assert states == {12: RevertedBy(13, None, at(2))}
    assert revert_states([pull(12), pull(14, merged=False, reverts=12)], []) == {}


def test_a_revert_of_the_revert_restores_the_work() -> None:
    pulls = [pull(12), pull(13, day=2, reverts=12), pull(14, day=3, reverts=13)]
    assert revert_states(pulls, []) == {13: RevertedBy(14, None, at(3))}
    # ...and reverting the re-apply reverts the work again
    pulls.append(pull(15, day=4, reverts=14))
    assert revert_states(pulls, []) == {12: RevertedBy(13, None, at(2)), 14: RevertedBy(15, None, at(4))}


def test_a_revert_commit_naming_the_merge_commit_or_any_commit_of_the_pr() -> None:
    merge, first, revert = "aa" * 20, "bb" * 20, "cc" * 20
    pulls = [pull(12, shas=(merge, first))]
    assert revert_states(pulls, [RevertCommitSignal(revert, merge, at(3))]) == {12: RevertedBy(None, revert, at(3))}
    assert revert_states(pulls, [RevertCommitSignal(revert, first[:9], at(3))]) == {12: RevertedBy(None, revert, at(3))}
    # the revert commit itself reverted: the work stands
    signals = [RevertCommitSignal(revert, merge, at(3)), RevertCommitSignal("dd" * 20, revert, at(4))]
    assert revert_states(pulls, signals) == {}


def test_a_revert_commit_inside_a_revert_pr_is_that_pr() -> None:
    merge12, revert_commit = "aa" * 20, "cc" * 20
    pulls = [pull(12, shas=(merge12,)), pull(13, day=2, shas=(revert_commit,), reverts=12), pull(14, day=3, reverts=13)]
    # the push of PR 13's commit to main says the same as its body; PR 14 undoes PR 13, so both signals fall
    assert revert_states(pulls, [RevertCommitSignal(revert_commit, merge12, at(2))]) == {
        13: RevertedBy(14, None, at(3))
    }


def test_a_cycle_reverts_nothing() -> None:
    assert revert_states([pull(12, reverts=13), pull(13, reverts=12)], []) == {}


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
