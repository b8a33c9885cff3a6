"""Reverted work (DESIGN §6, issue 15): which merged pull requests were later reverted, and by what. Pure.

Two signals say a change was reverted:
- a merged PR whose body carries GitHub's revert link, `Reverts owner/repo#N` (what the Revert button writes);
- a commit pushed to the default branch whose message says `This reverts commit <sha>` (what `git revert`
  writes), naming a PR's merge commit or one of its commits.

A revert can itself be reverted: then the work it undid stands again. So a change is reverted when at least one of
its reverters is in effect, and a reverter is in effect when it is not reverted itself (a PR reverter must also
be merged). A revert counts only when it landed after what it reverts, so a cycle (which real history cannot
produce, but hand-written bodies can) reverts nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from app.formatting import usd_json

# GitHub's Revert button writes "Reverts owner/repo#123" as the PR body's first line.
_REVERTS_LINK = re.compile(r"(?im)^\s*Reverts\s+([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#(\d{1,9})\b")
_REVERTS_COMMIT = re.compile(r"(?i)\bThis reverts commit ([0-9a-f]{7,40})\b")
MAX_REVERT_TARGETS = 20  # a commit message naming more is not a revert worth following

NodeKind: TypeAlias = Literal["pr", "commit"]
Node: TypeAlias = tuple[NodeKind, str]  # ("pr", "12") or ("commit", sha)


def reverted_pull_number(body: str | None, *, repo: str) -> int | None:
    """The PR of `repo` that a PR body reverts, from GitHub's `Reverts owner/repo#N` line; None if none."""
    for found in _REVERTS_LINK.finditer(body or ""):
        if found.group(1).lower() == repo.lower():
            return int(found.group(2))
    return None


def reverted_shas(message: str | None) -> tuple[str, ...]:
    """The commits a commit message reverts (`This reverts commit <sha>`), lower-cased, each once."""
    found = dict.fromkeys(sha.lower() for sha in _REVERTS_COMMIT.findall(message or ""))
    return tuple(found)[:MAX_REVERT_TARGETS]


@dataclass(frozen=True, slots=True)
class PullChange:
    """A pull request of one repository as revert detection sees it."""

    number: int
    merged: bool
    merged_at: datetime | None
    shas: frozenset[str]  # its merge commit and its commits, lower case
    reverts_number: int | None  # the PR its body reverts


@dataclass(frozen=True, slots=True)
class RevertCommitSignal:
    sha: str  # the reverting commit, pushed to the default branch
    reverted_sha: str
    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class RevertedBy:
    """What reverted a PR: a merged PR (`number`) or a commit (`sha`, when no known PR holds it), and when."""

    number: int | None
    sha: str | None
    at: datetime


def _prefix_match(sha: str, shas: frozenset[str]) -> bool:
    return sha in shas or (len(sha) < 40 and any(full.startswith(sha) for full in shas))


def revert_states(pulls: Iterable[PullChange], commits: Iterable[RevertCommitSignal]) -> dict[int, RevertedBy]:
    """Each merged PR that is reverted now, with the latest reverter in effect."""
    by_number = {p.number: p for p in pulls}
    merged_shas = sorted((p.number, p.shas) for p in by_number.values() if p.merged)

    def node_of(sha: str) -> Node:
        for number, shas in merged_shas:
            if _prefix_match(sha, shas):
                return ("pr", str(number))
        return ("commit", sha)

    edges: list[tuple[Node, Node, datetime]] = []  # (reverter, reverted, when the revert landed)
    for pull in by_number.values():
        if pull.merged and pull.merged_at is not None and pull.reverts_number is not None:
            edges.append((("pr", str(pull.number)), ("pr", str(pull.reverts_number)), pull.merged_at))
    for signal in commits:
        edges.append((node_of(signal.sha), node_of(signal.reverted_sha), signal.pushed_at))
    landed: dict[Node, datetime] = {("pr", str(p.number)): p.merged_at for p in by_number.values() if p.merged_at}
    for source, _, when in edges:
        landed.setdefault(source, when)
    reverters: dict[Node, list[tuple[Node, datetime]]] = {}
    for source, target, when in edges:
        # A revert lands after what it reverts: this keeps the graph acyclic whatever bodies say.
        if source != target and (target not in landed or landed[target] < when):
            reverters.setdefault(target, []).append((source, when))

    decided: dict[Node, RevertedBy | None] = {}

    def reverted(node: Node, visiting: frozenset[Node]) -> RevertedBy | None:
        if node in decided:
            return decided[node]
        if node in visiting:
            return None  # a cycle: nothing real is undone by it
        latest: RevertedBy | None = None
        for source, at in reverters.get(node, ()):
            in_effect = source[0] == "commit" or by_number.get(int(source[1]), _UNMERGED).merged
            if not in_effect or reverted(source, visiting | {node}) is not None:
                continue
            found = RevertedBy(int(source[1]), None, at) if source[0] == "pr" else RevertedBy(None, source[1], at)
            if latest is None or found.at >= latest.at:
                latest = found
        decided[node] = latest
        return latest

    states: dict[int, RevertedBy] = {}
    for pull in by_number.values():
        if pull.merged:
            found = reverted(("pr", str(pull.number)), frozenset())
            if found is not None:
                states[pull.number] = found
    return states


def reverted_targets(pulls: Mapping[int, PullChange], commits: Iterable[RevertCommitSignal]) -> set[int]:
    """Every PR named by a revert signal (directly or through a commit): the comments a new signal may change."""
    targets = {p.reverts_number for p in pulls.values() if p.reverts_number is not None}
    for signal in commits:
        targets |= {n for n, p in pulls.items() if _prefix_match(signal.reverted_sha, p.shas)}
        targets |= {n for n, p in pulls.items() if _prefix_match(signal.sha, p.shas)}
    return {n for n in targets if n in pulls}


_UNMERGED = PullChange(number=0, merged=False, merged_at=None, shas=frozenset(), reverts_number=None)


@dataclass(frozen=True, slots=True)
class RevertTarget:
    """The PR a revert PR reverts, as its comment names it."""

    number: int
    title: str
    cost_usd: Decimal
    html_url: str


def revert_json(reverted_by: RevertedBy | None, reverts: RevertTarget | None) -> dict[str, Any]:
    """The PR summary's revert keys (DESIGN §9): `reverted_by` when reverted, `reverts` for a revert PR."""
    found: dict[str, Any] = {}
    if reverted_by is not None:
        found["reverted_by"] = {
            "pull_request": reverted_by.number,
            "commit": reverted_by.sha,
            "at": reverted_by.at.isoformat(),
        }
    if reverts is not None:
        found["reverts"] = {"pull_request": reverts.number, "cost_usd": usd_json(reverts.cost_usd)}
    return found
