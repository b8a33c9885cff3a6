"""Attribution of a usage record to a repository, branch, commit and pull request.

Client attribution is a claim: these functions only normalise it. Garbage yields no attribution, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

_OWNER_NAME = r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100}?)"
_PATTERNS = (
    # owner/name
    re.compile(rf"^{_OWNER_NAME}$"),
    # https://github.com/owner/name(.git), https://ghe.example.com/owner/name, with optional user@ and port
    re.compile(rf"^(?:https?|git|ssh)://(?:[^@/]+@)?[^/]+(?::\d+)?/{_OWNER_NAME}(?:\.git)?/?$"),
    # git@github.com:owner/name(.git)
    re.compile(rf"^[^@/\s]+@[^:/\s]+:{_OWNER_NAME}(?:\.git)?/?$"),
)
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_SPACE = re.compile(r"\s")


def normalize_repo(value: Any) -> str | None:
    """`owner/name`, lower-cased, from owner/name or an https/ssh git URL (github.com or Enterprise)."""
    if not isinstance(value, str) or len(value) > 500:
        return None
    return _normalize_repo_text(value)


# A batch names the same few repositories thousands of times: the regexes run once per distinct spelling.
@lru_cache(maxsize=4096)
def _normalize_repo_text(value: str) -> str | None:
    text = value.strip()
    for pattern in _PATTERNS:
        if match := pattern.match(text):
            name = match["name"]
            if name.endswith(".git"):
                name = name[: -len(".git")]
            if not name or name in {".", ".."}:
                return None
            return f"{match['owner']}/{name}".lower()
    return None


def normalize_commit(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _COMMIT.match(text) else None


def normalize_branch(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("refs/heads/"):
        text = text[len("refs/heads/") :]
    # A detached HEAD names no branch. A name too long to store is kept: the record is then refused with that
    # reason (DESIGN §2 "Limits") instead of being stored without the branch it claims.
    if not text or text == "HEAD" or _SPACE.search(text):
        return None
    return text


def normalize_pr(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**31 else None
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        # A change id may be a PR URL: take its last path segment.
        if "/" in text:
            text = text.rstrip("/").rsplit("/", 1)[-1]
        if text.isdigit():
            return normalize_pr(int(text))
    return None


@dataclass(frozen=True, slots=True)
class Attribution:
    repo: str | None = None
    branch: str | None = None
    commit: str | None = None
    pr: int | None = None

    @classmethod
    def parse(cls, *, repo: Any = None, branch: Any = None, commit: Any = None, pr: Any = None) -> Attribution:
        """Normalise raw claims; anything unreadable becomes None."""
        return cls(
            repo=normalize_repo(repo),
            branch=normalize_branch(branch),
            commit=normalize_commit(commit),
            pr=normalize_pr(pr),
        )

    @property
    def owner(self) -> str | None:
        return self.repo.split("/", 1)[0] if self.repo else None

    def is_empty(self) -> bool:
        return self.repo is None and self.branch is None and self.commit is None and self.pr is None

    def filled_from(self, fallback: Attribution) -> Attribution:
        """Keep every field this attribution has; take the missing ones from `fallback`.

        Branch, commit and PR only make sense in their repository: they are taken from the fallback only when
        the repositories agree (or this one has none).
        """
        if fallback.is_empty():
            return self
        if self.repo is not None and fallback.repo is not None and self.repo != fallback.repo:
            return self
        return replace(
            self,
            repo=self.repo or fallback.repo,
            branch=self.branch or fallback.branch,
            commit=self.commit or fallback.commit,
            pr=self.pr or fallback.pr,
        )


# The neutral header names (OpenTelemetry VCS semantic conventions) every ingest request may carry.
VCS_HEADERS = {
    "repo": "x-vcs-repository-url-full",
    "branch": "x-vcs-ref-head-name",
    "commit": "x-vcs-ref-head-revision",
    "pr": "x-vcs-change-id",
}


def attribution_from_headers(headers: Any) -> Attribution:
    """Read the x-vcs-* headers from any case-insensitive mapping (or a plain dict with lower-case keys)."""
    return Attribution.parse(**{field: headers.get(name) for field, name in VCS_HEADERS.items()})
