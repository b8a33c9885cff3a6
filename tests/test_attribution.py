from __future__ import annotations

import pytest

from app.attribution import (
    Attribution,
    attribution_from_headers,
    normalize_commit,
    normalize_pr,
    normalize_repo,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme/widgets", "acme/widgets"),
        ("Acme/Widgets", "acme/widgets"),
        ("https://github.com/Acme/widgets", "acme/widgets"),
        ("https://github.com/acme/widgets.git", "acme/widgets"),
        ("https://x-access-token:abc@github.com/acme/widgets.git", "acme/widgets"),
        ("git@github.com:acme/widgets.git", "acme/widgets"),
        ("git@github.com:acme/widgets", "acme/widgets"),
        ("ssh://git@github.example.com:2222/acme/widgets.git", "acme/widgets"),
        ("https://github.example.com/acme/widgets/", "acme/widgets"),
        ("acme/my.repo", "acme/my.repo"),
        ("garbage", None),
        ("a/b/c", None),
        ("https://github.com/acme", None),
        ("", None),
        (42, None),
        (None, None),
    ],
)
def test_normalize_repo(raw: object, expected: str | None) -> None:
    assert normalize_repo(raw) == expected


def test_commit_is_7_to_40_hex() -> None:
    assert normalize_commit("ABCDEF1") == "abcdef1"
    assert normalize_commit("a" * 40) == "a" * 40
    assert normalize_commit("abcdef") is None
    assert normalize_commit("a" * 41) is None
    assert normalize_commit("not-hex") is None


def test_pr_is_a_positive_integer() -> None:
    assert normalize_pr(482) == 482
    assert normalize_pr("482") == 482
    assert normalize_pr("#482") == 482
    assert normalize_pr("https://github.com/acme/widgets/pull/482") == 482
    assert normalize_pr(0) is None
    assert normalize_pr(True) is None
    assert normalize_pr("x") is None


def test_garbage_yields_no_attribution_not_an_error() -> None:
    attribution = Attribution.parse(repo="???", branch=" ", commit="zz", pr="abc")
    assert attribution.is_empty()


def test_branch_from_a_ref() -> None:
    assert Attribution.parse(branch="refs/heads/feat/x").branch == "feat/x"
    assert Attribution.parse(branch="HEAD").branch is None


def test_fill_from_keeps_own_values_and_respects_repository() -> None:
    own = Attribution.parse(repo="acme/widgets", branch="feat")
    headers = Attribution.parse(repo="acme/widgets", branch="main", commit="abcdef1", pr=3)
    assert own.filled_from(headers) == Attribution("acme/widgets", "feat", "abcdef1", 3)
    other_repo = Attribution.parse(repo="acme/other", commit="abcdef1")
    assert own.filled_from(other_repo) == own
    assert Attribution().filled_from(headers) == headers


def test_from_headers_reads_the_neutral_names() -> None:
    headers = {
        "x-vcs-repository-url-full": "https://github.com/acme/widgets",
        "x-vcs-ref-head-name": "feat/cache",
        "x-vcs-ref-head-revision": "3f2c9a1",
        "x-vcs-change-id": "12",
    }
    assert attribution_from_headers(headers) == Attribution("acme/widgets", "feat/cache", "3f2c9a1", 12)
