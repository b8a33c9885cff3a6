"""GitHub as one pull request sees it: the verbs a refresh needs, bound to that pull request.

`app.github.GitHubApp.pull` gives the real one (githubkit over HTTP); tests pass a recording fake, so the
publishing rules are tested without HTTP, JWTs or a database (tests/fake_pull.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app.github_objects import PullCommit


@dataclass(frozen=True, slots=True)
class PullRef:
    installation_id: int
    repo: str  # "owner/name" of the base repository
    number: int


class PullPort(Protocol):
    """The GitHub side of one pull request. Comments are Tokentrail's own: found by the marker the port was bound
    with, and written by the App."""

    ref: PullRef

    def get_pull(self) -> dict[str, Any]: ...
    def list_commits(self) -> list[PullCommit]: ...
    def list_reviews(self) -> list[dict[str, Any]]: ...
    def get_file(self, path: str, *, ref: str) -> str | None: ...
    def find_comment(self) -> tuple[int, str] | None: ...
    def create_comment(self, body: str) -> int: ...
    def update_comment(self, comment_id: int, body: str) -> None: ...
    def upsert_check_run(
        self, *, check_run_id: int | None, head_sha: str, output: dict[str, str], conclusion: str
    ) -> int: ...
