"""app.events: every recorded GitHub payload parses to the event we act on or to `Ignored`; drift never raises."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.events import (
    CheckRerequest,
    Event,
    Ignored,
    InstallationEvent,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
    parse_event,
)

GITHUB = Path(__file__).resolve().parent / "fixtures" / "github"
FIXTURES = sorted(path.name for path in GITHUB.glob("*.json"))

# Every fixture and what it must parse to: an event type, or Ignored with a fragment of the reason.
EXPECTED: dict[str, type[Event] | str] = {
    "check_run.requested_action.payload.json": "check run is not ours",
    "check_run.rerequested.payload.json": "check run is not ours",
    "check_suite.requested.payload.json": "check_suite.requested needs no work",
    "check_suite.rerequested.payload.json": CheckRerequest,
    "installation.created.payload.json": InstallationEvent,
    "installation.deleted.payload.json": InstallationEvent,
    "installation_repositories.added.payload.json": InstallationEvent,
    "installation_repositories.removed.payload.json": InstallationEvent,
    # the Action reads it from a comment-triggered run's event file; the server is not subscribed to it
    "issue_comment.created.payload.json": "event 'issue_comment' is not used",
    "ping.payload.json": "ping",
    "ping.with-app_id.payload.json": "ping",
    "pull_request.closed.deleted_fork.json": PullRequestEvent,
    "pull_request.closed.merged.json": PullRequestEvent,
    "pull_request.closed.payload.json": PullRequestEvent,
    "pull_request.closed.with-organization.payload.json": PullRequestEvent,
    "pull_request.edited.base.json": PullRequestEvent,
    "pull_request.opened.fork.json": PullRequestEvent,
    "pull_request.opened.payload.json": PullRequestEvent,
    "pull_request.opened.with-null-body.json": PullRequestEvent,
    "pull_request.reopened.payload.json": PullRequestEvent,
    "pull_request.synchronize.payload.json": PullRequestEvent,
    "pull_request_review.dismissed.payload.json": ReviewEvent,
    "pull_request_review.submitted.approved.json": ReviewEvent,
    "pull_request_review.submitted.changes_requested.json": ReviewEvent,
    "pull_request_review.submitted.payload.json": ReviewEvent,
    "pull_request_review.submitted.with-organization.payload.json": ReviewEvent,
    "push.forced.json": PushEvent,
    "push.payload.json": "push to refs/tags/simple-tag is not a branch",
    "push.with-installation.payload.json": "push to refs/tags/simple-tag is not a branch",
    "push.with-new-branch.payload.json": PushEvent,
}
EVENT_TYPES = (InstallationEvent, PullRequestEvent, ReviewEvent, PushEvent, CheckRerequest)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # what the worker would pass as the time of handling


def event_of(name: str) -> str:
    return name.split(".", 1)[0]


def load(name: str) -> dict[str, Any]:
    data = json.loads((GITHUB / name).read_text())
    assert isinstance(data, dict)
    return data


def parse(name: str, **changes: Any) -> Event:
    payload = load(name)
    payload.update(changes)
    return parse_event(event_of(name), payload, now=NOW)


def test_the_table_covers_every_fixture() -> None:
    assert sorted(EXPECTED) == FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_parses_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(Ignored) as ignored:
            parse_event(event_of(name), load(name), now=NOW)
        assert expected in ignored.value.reason
    else:
        assert type(parse_event(event_of(name), load(name), now=NOW)) is expected


def test_pull_request_opened_snapshot() -> None:
    event = parse("pull_request.opened.payload.json")
    assert isinstance(event, PullRequestEvent)
    assert (event.action, event.installation_id, event.default_branch) == ("opened", 1, "master")
    pull = event.pull
    assert (pull.repo, pull.number, pull.author, pull.state) == ("codertocat/hello-world", 2, "Codertocat", "open")
    assert (pull.head_repo, pull.head_ref, pull.base_ref) == ("codertocat/hello-world", "changes", "master")
    assert pull.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert pull.created_at == datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC)
    assert (pull.merged, pull.merged_at, pull.closed_at, pull.draft) == (False, None, None, False)
    assert (pull.additions, pull.deletions, pull.changed_files) == (1, 1, 1)
    assert pull.labels == ("bug",)
    assert pull.html_url == "https://github.com/Codertocat/Hello-World/pull/2"


def test_fork_head_repo_is_the_fork() -> None:
    event = parse("pull_request.opened.fork.json")
    assert isinstance(event, PullRequestEvent)
    assert event.pull.repo == "codertocat/hello-world"  # the base repository
    assert event.pull.head_repo == "forkerella/hello-world"
    assert event.pull.author == "Forkerella"


def test_deleted_fork_has_no_head_repo() -> None:
    event = parse("pull_request.closed.deleted_fork.json")
    assert isinstance(event, PullRequestEvent)
    assert event.pull.head_repo is None
    assert event.pull.head_ref == "changes"
    assert event.pull.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_merged_close() -> None:
    event = parse("pull_request.closed.merged.json")
    assert isinstance(event, PullRequestEvent)
    assert (event.action, event.pull.state, event.pull.merged) == ("closed", "closed", True)
    assert event.pull.merged_at == datetime(2019, 5, 15, 15, 21, 18, tzinfo=UTC)
    assert event.pull.closed_at == event.pull.merged_at


def test_unmerged_close() -> None:
    event = parse("pull_request.closed.payload.json")
    assert isinstance(event, PullRequestEvent)
    assert (event.pull.state, event.pull.merged, event.pull.merged_at) == ("closed", False, None)
    assert event.pull.closed_at == datetime(2019, 5, 15, 15, 21, 18, tzinfo=UTC)


def test_synchronize_keeps_the_previous_head() -> None:
    event = parse("pull_request.synchronize.payload.json")
    assert isinstance(event, PullRequestEvent)
    assert event.before == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert event.pull.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("pull_request_review.submitted.payload.json", "commented"),
        ("pull_request_review.submitted.approved.json", "approved"),
        ("pull_request_review.submitted.changes_requested.json", "changes_requested"),
        ("pull_request_review.dismissed.payload.json", "dismissed"),
    ],
)
def test_review_states(name: str, state: str) -> None:
    event = parse(name)
    assert isinstance(event, ReviewEvent)
    assert (event.state, event.review_id, event.reviewer) == (state, 237895671, "codertocat")
    assert event.submitted_at == datetime(2019, 5, 15, 15, 20, 38, tzinfo=UTC)
    assert event.pull.number == 2
    # The review payload's PR object has no diff counts: unknown, not zero.
    assert event.pull.additions is None


def test_review_state_is_lower_cased() -> None:
    payload = load("pull_request_review.submitted.approved.json")
    payload["review"]["state"] = "CHANGES_REQUESTED"  # the REST API's spelling
    event = parse_event("pull_request_review", payload, now=NOW)
    assert isinstance(event, ReviewEvent)
    assert event.state == "changes_requested"


def test_dismissed_wins_over_the_review_state() -> None:
    payload = load("pull_request_review.dismissed.payload.json")
    payload["review"]["state"] = "approved"
    event = parse_event("pull_request_review", payload, now=NOW)
    assert isinstance(event, ReviewEvent)
    assert (event.action, event.state) == ("dismissed", "dismissed")


def test_forced_push() -> None:
    event = parse("push.forced.json")
    assert isinstance(event, PushEvent)
    assert (event.forced, event.created, event.deleted) == (True, False, False)
    assert (event.repo, event.branch, event.installation_id) == ("codertocat/hello-world", "changes", 1)
    assert event.before == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert event.after == "5f3b1c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
    assert event.commits == ("0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "5f3b1c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a")
    assert event.pushed_at == datetime(2019, 5, 15, 15, 24, 1, tzinfo=UTC)


def test_new_branch_push() -> None:
    event = parse("push.with-new-branch.payload.json")
    assert isinstance(event, PushEvent)
    assert (event.created, event.deleted, event.forced, event.branch) == (True, False, False, "master")
    assert event.before == "0" * 40
    assert event.commits == ("6113728f27ae82c7b1a177c8d03f9e96e0adf246",)


def test_branch_deletion_push() -> None:
    # Upstream's deletion is of a tag; the same payload on a branch ref is a branch deletion.
    event = parse("push.with-installation.payload.json", ref="refs/heads/feat/cache")
    assert isinstance(event, PushEvent)
    assert (event.deleted, event.created, event.branch, event.commits) == (True, False, "feat/cache", ())
    assert event.after == "0" * 40
    assert event.installation_id is not None


def test_tag_push_is_ignored() -> None:
    with pytest.raises(Ignored, match="refs/tags/simple-tag is not a branch"):
        parse("push.payload.json")
    with pytest.raises(Ignored, match="not a branch"):
        parse("push.forced.json", ref="refs/tags/v1.0")


def test_base_change_is_detected() -> None:
    event = parse("pull_request.edited.base.json")
    assert isinstance(event, PullRequestEvent)
    assert (event.action, event.base_changed, event.pull.base_ref) == ("edited", True, "master")


def test_title_edit_is_kept_without_a_base_change() -> None:
    event = parse("pull_request.edited.base.json", changes={"title": {"from": "Old title"}})
    assert isinstance(event, PullRequestEvent)
    assert (event.action, event.base_changed) == ("edited", False)


@pytest.mark.parametrize("changes", [{"body": {"from": "old body"}}, {}, None, {"base": "not an object"}])
def test_other_edits_are_ignored(changes: Any) -> None:
    with pytest.raises(Ignored, match="without a base or title change"):
        parse("pull_request.edited.base.json", changes=changes)


def test_unused_pull_request_action_is_ignored() -> None:
    with pytest.raises(Ignored, match=r"pull_request\.assigned needs no work"):
        parse("pull_request.opened.payload.json", action="assigned")


def test_check_suite_rerequested_numbers() -> None:
    event = parse("check_suite.rerequested.payload.json")
    assert isinstance(event, CheckRerequest)
    assert event.numbers == (2,)
    assert event.repo == "codertocat/hello-world"
    assert event.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_check_run_rerequested_on_our_check() -> None:
    payload = load("check_run.rerequested.payload.json")
    payload["check_run"]["name"] = "AI spend"
    payload["check_run"]["pull_requests"] = [{"number": 7}, {"number": "8"}, "junk"]
    event = parse_event("check_run", payload, now=NOW)
    assert isinstance(event, CheckRerequest)
    assert event.numbers == (7,)
    assert event.head_sha == payload["check_run"]["head_sha"]


def test_installation_created_lists_its_repositories() -> None:
    event = parse("installation.created.payload.json")
    assert isinstance(event, InstallationEvent)
    assert (event.action, event.installation_id, event.account_login, event.account_type) == (
        "created",
        957387,
        "codertocat",
        "User",
    )
    assert (event.repos_added, event.repos_removed) == (("codertocat/hello-world",), ())


def test_installation_deleted_adds_no_repositories() -> None:
    event = parse("installation.deleted.payload.json")
    assert isinstance(event, InstallationEvent)
    assert (event.action, event.installation_id, event.account_login) == ("deleted", 2, "octocat")
    assert (event.repos_added, event.repos_removed) == ((), ())


def test_installation_repositories_added_and_removed() -> None:
    added = parse("installation_repositories.added.payload.json")
    removed = parse("installation_repositories.removed.payload.json")
    assert isinstance(added, InstallationEvent)
    assert isinstance(removed, InstallationEvent)
    assert (added.action, added.repos_added, added.repos_removed) == ("repositories_added", ("codertocat/space",), ())
    assert (removed.action, removed.repos_added, removed.repos_removed) == (
        "repositories_removed",
        (),
        ("octocat/hello-world",),
    )


@pytest.mark.parametrize("name", ["ping.payload.json", "ping.with-app_id.payload.json"])
def test_ping_is_ignored(name: str) -> None:
    with pytest.raises(Ignored) as ignored:
        parse(name)
    assert ignored.value.reason == "ping: pong"


@pytest.mark.parametrize("payload", [None, [], "text", 3, True])
def test_a_payload_that_is_not_an_object_is_ignored(payload: Any) -> None:
    with pytest.raises(Ignored, match="not a JSON object"):
        parse_event("pull_request", payload, now=NOW)


def test_unknown_event_is_ignored() -> None:
    with pytest.raises(Ignored, match="'issues' is not used"):
        parse_event("issues", load("pull_request.opened.payload.json"), now=NOW)


# -- payload drift ---------------------------------------------------------------------------------------------

# What a key can become when GitHub (or a proxy) changes shape: null, any other JSON type, an empty container.
REPLACEMENTS: tuple[Any, ...] = (None, 0, -1, 1.5, True, "", "x", [], [1], {}, {"a": None})
DELETED = object()


def mutations(root: Any) -> Iterator[str]:
    """Mutate `root` in place, one change at a time, restoring it after each; yields a label of the change."""
    stack: list[tuple[Any, str]] = [(root, "$")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            keys: list[Any] = list(node)
        elif isinstance(node, list):
            keys = list(range(len(node)))
        else:
            continue
        for key in keys:
            original = node[key]
            for replacement in (DELETED, *REPLACEMENTS):
                if replacement is DELETED:
                    node.pop(key)
                else:
                    node[key] = copy.copy(replacement)
                yield f"{path}.{key} = {'<deleted>' if replacement is DELETED else replacement!r}"
                if isinstance(node, list) and replacement is DELETED:
                    node.insert(key, original)
                else:
                    node[key] = original  # a deleted dict key comes back last: order does not matter here
            stack.append((original, f"{path}.{key}"))


def assert_event_or_ignored(event: str, payload: Any, label: str) -> None:
    try:
        result = parse_event(event, payload, now=NOW)
    except Ignored as ignored:
        assert isinstance(ignored.reason, str)
        assert ignored.reason
    except Exception as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{label}: {type(error).__name__}: {error}")
    else:
        assert isinstance(result, EVENT_TYPES), label


@pytest.mark.parametrize("name", FIXTURES)
def test_every_key_deleted_nulled_or_retyped_never_raises(name: str) -> None:
    payload = load(name)
    pristine = copy.deepcopy(payload)
    count = 0
    for label in mutations(payload):
        assert_event_or_ignored(event_of(name), payload, label)
        count += 1
    assert payload == pristine  # every mutation was undone
    assert count > 50 * len(REPLACEMENTS)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def key_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from key_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from key_paths(value, (*path, index))


PATHS = {name: list(key_paths(load(name))) for name in FIXTURES}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_drift_on_several_keys_never_raises(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FIXTURES))
    payload = load(name)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        path = data.draw(st.sampled_from(PATHS[name]))
        parent: Any = payload
        for step in path[:-1]:
            if not isinstance(parent, dict | list):
                break
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            key = path[-1]
            if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(key, int) and key < len(parent)):
                if data.draw(st.booleans()):
                    parent[key] = data.draw(JSON_VALUES)
                elif isinstance(parent, dict):
                    parent.pop(key, None)
    event = data.draw(st.sampled_from([event_of(name), *sorted({event_of(n) for n in FIXTURES})]))
    assert_event_or_ignored(event, payload, f"{name} as {event}")


def test_github_ids_are_read() -> None:
    installation = parse("installation.created.payload.json")
    assert isinstance(installation, InstallationEvent)
    assert installation.account_id == 21031067
    assert installation.repository_ids == (("codertocat/hello-world", 186853002),)
    for name in ("pull_request.opened.payload.json", "pull_request_review.submitted.payload.json", "push.forced.json"):
        event = parse(name)
        assert isinstance(event, PullRequestEvent | ReviewEvent | PushEvent)
        repository = load(name)["repository"]
        assert (event.repository_id, event.owner_id) == (repository["id"], repository["owner"]["id"]), name
