"""The revert graph (issue 15, `app.outcomes`): the two signals, reverts of reverts, abbreviated shas, cycles."""

from __future__ import annotations

from datetime import UTC, datetime

from app.outcomes import (
    PullChange,
    RevertCommitSignal,
    RevertedBy,
    revert_states,
    reverted_pull_number,
    reverted_shas,
)

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
